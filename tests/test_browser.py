"""Widgets render and react in a real JupyterLab, in a real browser.

Starts JupyterLab on 127.0.0.1, opens a copy of the attention notebook in headless
Chromium (Debian's, driven by Playwright's Python API: browser downloads are unreachable
here), runs it, moves a slider of the attention explorer, and checks that the picture
changes and that no "Error displaying widget" appears.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _reason_to_skip() -> str | None:
    if CHROMIUM is None:
        return "no chromium on this machine (apt-get install chromium); .ci/run installs it"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


pytestmark = pytest.mark.skipif(_reason_to_skip() is not None, reason=_reason_to_skip() or "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "09_attention_maps.ipynb", notebooks)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "TITN_LITE_PROFILE": "smoke", "TITN_LITE_DATA": str(tmp_path / "data"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(server, base, token)
    except pytest.fail.Exception:
        server.kill()
        raise
    yield f"{base}/lab/tree/09_attention_maps.ipynb?token={token}"
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def test_attention_slider_renders_and_reacts_in_jupyterlab(jupyterlab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = _open_browser(playwright)
        page.goto(jupyterlab)
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                               ".jp-KernelStatus", timeout=60_000)
        # The Run menu's layout changes between JupyterLab releases; its command id does not.
        # Run All before the kernel is ready silently runs nothing, so wait for an idle kernel first.
        page.wait_for_function(
            "(() => { const app = window.jupyterapp; const panel = app && app.shell.currentWidget;"
            " const kernel = panel && panel.sessionContext && panel.sessionContext.session"
            " && panel.sessionContext.session.kernel;"
            " return kernel && kernel.status === 'idle' && app.commands.hasCommand('notebook:run-all-cells'); })()",
            timeout=120_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

        explorer = page.locator(".widget-vbox").last
        try:
            explorer.wait_for(timeout=180_000)
        except Exception:
            page.screenshot(path=str(Path(os.environ.get("TITN_LITE_SCREENSHOT_DIR", "/tmp")) / "widget_test.png"))
            errors = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
            pytest.fail(f"the explorer never appeared; stderr shown in the notebook: {errors[-3:]}")
        picture = explorer.locator(".jp-OutputArea-output img").first
        picture.wait_for(timeout=60_000)
        before = picture.get_attribute("src")

        image_slider = explorer.locator(".widget-slider", has_text="image").first
        image_handle = image_slider.locator(".noUi-handle").first
        image_handle.focus()
        image_handle.press("ArrowRight")

        deadline = time.monotonic() + 30
        after = before
        while after == before and time.monotonic() < deadline:
            page.wait_for_timeout(250)
            after = explorer.locator(".jp-OutputArea-output img").first.get_attribute("src")
        page.screenshot(path=str(Path(os.environ.get("TITN_LITE_SCREENSHOT_DIR", "/tmp")) / "widget_test.png"))
        text = page.inner_text("body")
        browser.close()

    assert before and before.startswith("data:image/png")
    assert after != before, "the picture did not change when the slider moved"
    assert "Error displaying widget" not in text


def _open_browser(playwright):
    """The system's Chromium, headless and offline-quiet, with one page the size of a laptop screen."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--disable-quic"])
    return browser, browser.new_page(viewport={"width": 1400, "height": 1000})


def _wait_for_server(server: subprocess.Popen, base: str, token: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            return
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {server.stderr.read()[-2000:]}")
            time.sleep(0.5)
    pytest.fail("JupyterLab did not start within 90 s")


def _launch_command() -> list[str]:
    """The README's launch, `titn-lite lab notebooks/`, with this environment's titn-lite."""
    script = shutil.which("titn-lite", path=str(Path(sys.executable).parent))
    return [script, "lab"] if script else [sys.executable, "-m", "titn_lite", "lab"]


def test_the_kits_launch_opens_with_its_kernel_and_no_pop_up(tmp_path):
    """JupyterLab as the README starts it (`titn-lite lab notebooks/` in the clone): the first
    notebook opens on "Python (titn-lite)", with no kernel dialog and no news or update toast;
    the user's own Jupyter configuration is left as it was."""
    from playwright.sync_api import sync_playwright

    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "00_setup.ipynb", clone / "notebooks")
    user_config = tmp_path / "user-jupyter-config"  # stands in for ~/.jupyter
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "TITN_LITE_PROFILE": "smoke", "TITN_LITE_DATA": str(tmp_path / "data"),
           "JUPYTER_CONFIG_DIR": str(user_config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTER_CONFIG_PATH", None)
    server = subprocess.Popen(
        [*_launch_command(), "notebooks/", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=clone, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    shots = Path(os.environ.get("TITN_LITE_SCREENSHOT_DIR", tmp_path))
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(server, base, token)
        with sync_playwright() as playwright:
            browser, page = _open_browser(playwright)
            page.goto(f"{base}/lab/tree/00_setup.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            page.wait_for_function(
                "(() => { const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " const kernel = panel && panel.sessionContext && panel.sessionContext.session"
                " && panel.sessionContext.session.kernel; return kernel && kernel.status === 'idle'; })()",
                timeout=120_000)
            page.wait_for_timeout(5_000)  # the news question and the update check come after the app is restored
            page.screenshot(path=str(shots / "lab_first_screen.png"))
            state = page.evaluate("""() => ({
                kernel: window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayName,
                toasts: [...document.querySelectorAll('.Toastify__toast, .jp-Notification-Toast')]
                    .map(t => t.innerText),
                dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText),
                notifications: window.jupyterapp.commands.label('apputils:display-notifications'),
            })""")
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
    assert state["kernel"] == "Python (titn-lite)", state
    assert state["toasts"] == [] and state["dialogs"] == [], state
    written = sorted(str(p.relative_to(user_config)) for p in user_config.rglob("*") if p.is_file()) \
        if user_config.exists() else []
    settings = [p for p in written if p.startswith(("labconfig", "jupyter_", "lab/user-settings", "lab/settings"))]
    assert not settings, f"the launch wrote to the user's config: {written}"
    assert (shots / "lab_first_screen.png").stat().st_size > 10_000
