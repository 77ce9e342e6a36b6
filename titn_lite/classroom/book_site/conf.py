# Sphinx configuration of the book (`titn-lite book build`).
#
# titn_lite.classroom.book copies this folder into the build's source folder, beside the book's
# copies of the executed notebooks, and writes what differs from one build to the next into
# _generated/: build.json (read below) and the Markdown pieces that index.md and results.md
# include (the run's stamp, the map of chapters, the measured results, the run's timings).
import json
import shutil
from pathlib import Path

import jupyter_server_mathjax
from sphinx.application import Sphinx

GENERATED = Path(__file__).with_name("_generated")
THIS_BUILD = json.loads((GENERATED / "build.json").read_text(encoding="utf-8"))

project = THIS_BUILD["title"]
author = "titn-lite"
html_title = THIS_BUILD["title"]

extensions = ["myst_nb"]
# _generated/ holds fragments that pages include, not pages of their own.
exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints"]

# MyST-NB shows the executed notebooks as they are, without running them again.
nb_execution_mode = "off"
nb_ipywidgets_js = {}
# Markdown that cells display (the kit's tables) is rendered with GitHub's flavour, which has tables.
nb_render_markdown_format = "gfm"
myst_enable_extensions = ["dollarmath", "amsmath"]

html_theme = "sphinx_book_theme"
html_theme_options = {"show_toc_level": 2, "use_download_button": False, "use_fullscreen_button": False,
                      "navigation_with_keys": False}
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_copy_source = False
html_show_sourcelink = False
html_context = {"default_mode": "light"}
html_favicon = "favicon.svg"  # a browser asks for /favicon.ico otherwise, and finds nothing

# MathJax 2, served from the site itself (copied into _static/mathjax once the build is done),
# so that the book reads offline; its web fonts (STIX) are local too.
MATHJAX_FILES = Path(jupyter_server_mathjax.__file__).parent / "static"
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web", "imageFont": None},
    "fast-preview": {"disabled": True},
    "messageStyle": "none",  # no "Typesetting math" box: it sits outside the page's landmarks
    "menuSettings": {"CHTMLpreview": False},
    # MyST-NB marks each notebook "ignore" (a $ in a printed output is not math); its math
    # elements carry the class "math", which MathJax must process all the same.
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "processEscapes": True,
                "ignoreClass": "tex2jax_ignore|mathjax_ignore", "processClass": "math|tex2jax_process|mathjax_process"},
}


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is None:
        shutil.copytree(MATHJAX_FILES, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("localization", "*.py", "__pycache__"))


def setup(app: Sphinx) -> None:
    app.connect("build-finished", copy_mathjax)
