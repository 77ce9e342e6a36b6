"""Where the files that ship inside the package are: the notebook series and the embedded data.

In the repository they sit at the top, in ``notebooks/`` and ``assets/``, where a reader
expects them; ``pyproject.toml`` maps those two folders into the package as
``titn_lite.series`` and ``titn_lite.assets``. A wheel therefore carries them, and an
editable install points at the clone's folders. Either way they are found through
``importlib.resources``, from any working directory, and nothing here reads a path
above the package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def packaged_folder(package: str) -> Path:
    """The folder on disk of one of the kit's data packages (``titn_lite.series`` or
    ``titn_lite.assets``)."""
    folder = files(package)
    if not isinstance(folder, Path) or not folder.is_dir():
        raise RuntimeError(f"{package} is not a folder on disk ({folder!r}); install titn-lite from its wheel "
                           f"or a clone with pip, not as a zip file")
    return folder


def series_folder() -> Path:
    """The numbered notebooks as the package ships them."""
    return packaged_folder("titn_lite.series")


def assets_folder() -> Path:
    """The embedded data (``fashion-mnist-mini/``) as the package ships it."""
    return packaged_folder("titn_lite.assets")
