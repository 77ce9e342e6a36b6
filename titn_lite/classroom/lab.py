"""Opening the series in JupyterLab: ``titn-lite lab [FOLDER]``.

``jupyter lab FOLDER`` with the kit's launch settings, for this launch only (nothing is
written to the user's Jupyter configuration, nor to the environment's):

- no news or update pop-up: JupyterLab's announcements plugin (the toast that asks "Would
  you like to get notified about official Jupyter news?" and the update check) is
  disabled in the page config, and the server neither fetches news nor checks for updates;
- the "Python (titn-lite)" kernel (registered if missing, as ``notebooks run`` does) is the
  one a notebook opens with and the one a new notebook gets: the launch offers only it.

The settings live in a temporary folder put first on ``JUPYTER_CONFIG_PATH`` while the
server runs (the user's own settings still apply beneath them) and removed after.
Options after FOLDER go to JupyterLab (``titn-lite lab notebooks --port 8899``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from titn_lite.system.usage import UsageError

ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"
# The same wish, as settings, for a JupyterLab that is not started by the kit (a hosted
# image's overrides.json, say): never ask about news, never check for updates.
NOTIFICATION_SETTINGS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                                         "checkForUpdates": False}}


def launch_config(kernel: str) -> dict[str, dict]:
    """The files of the launch's configuration folder: relative path -> JSON content."""
    return {
        "labconfig/page_config.json": {"disabledExtensions": {ANNOUNCEMENTS: True}},
        "jupyter_server_config.json": {
            "LabApp": {"news_url": None,
                       "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
            "MappingKernelManager": {"default_kernel_name": kernel},
            "KernelSpecManager": {"allowed_kernelspecs": [kernel]},
        },
    }


def write_launch_config(folder: Path, kernel: str) -> Path:
    for relative, content in launch_config(kernel).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) + "\n")
    return folder


def lab_command(folder: str | Path, options: list[str] | tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "jupyterlab", str(folder), *options]


def launch_environment(config: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``config`` first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if base is None else base)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in (str(config), env.get("JUPYTER_CONFIG_PATH", "")) if p)
    return env


def run_lab(folder: str | Path = "notebooks", options: list[str] | tuple[str, ...] = ()) -> int:
    """Start JupyterLab on ``folder`` with the kit's launch settings; returns its exit status.
    Ctrl-C reaches JupyterLab, which asks whether to shut down, as usual."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder; in a clone, run this from its top folder (notebooks/ is "
                         f"there), or first put the series somewhere with `titn-lite notebooks copy my-course` "
                         f"and open my-course/notebooks")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        raise UsageError("JupyterLab is not installed in this Python: pip install 'titn-lite[jupyter]' (in a clone, "
                         "pip install -e '.[jupyter]')") from None
    from titn_lite.classroom.series import ensure_kernel

    kernel = ensure_kernel()
    with tempfile.TemporaryDirectory(prefix="titn-lite-lab-") as config:
        process = subprocess.Popen(lab_command(folder, options),
                                   env=launch_environment(write_launch_config(Path(config), kernel)))
        try:  # stopped by a signal (a service manager, a test): stop JupyterLab too, then tidy up
            signal.signal(signal.SIGTERM, lambda *_: process.terminate())
        except ValueError:  # not the main thread: no handler, as with any library call
            pass
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:  # JupyterLab got it too, and asks whether to stop
                continue
