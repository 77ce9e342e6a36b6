"""A clean first hour: the kit's JupyterLab launch settings and the DataLoader's workers.

(The launch itself, in a browser, is tests/test_browser.py.)
"""

import json
import os
from pathlib import Path

from titn_lite.classroom import lab
from titn_lite.system import cpu
from titn_lite.system.cpu import available_cores, capped_workers


def test_the_launch_config_turns_off_news_and_updates_and_chooses_the_kits_kernel(tmp_path, monkeypatch):
    """The files read back the way Jupyter reads them, each setting checked on what it configures
    (the defaults would fetch news, check for updates and offer every kernel)."""
    import jupyterlab
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager
    from jupyterlab.handlers.announcements import NeverCheckForUpdate
    from jupyterlab.labapp import LabApp
    from jupyterlab_server.config import get_static_page_config
    from traitlets.config.loader import JSONFileConfigLoader

    folder = lab.write_launch_config(tmp_path / "config", "titn-lite")
    monkeypatch.delenv("JUPYTER_NO_CONFIG", raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", lab.launch_environment(folder, {})["JUPYTER_CONFIG_PATH"])
    assert jupyter_config_path()[0] == str(folder)
    # The page config JupyterLab's server builds from the config path disables the announcements
    # plugin, and that plugin is one the installed JupyterLab has (a renamed one would stay on).
    assert get_static_page_config(level="all")["disabledExtensions"].get(lab.ANNOUNCEMENTS) is True
    static = Path(jupyterlab.__file__).parent / "static"
    assert any(f'"{lab.ANNOUNCEMENTS}"' in js.read_text(errors="ignore") for js in static.glob("jlab_core.*.js"))
    config = JSONFileConfigLoader("jupyter_server_config.json", str(folder)).load_config()
    app = LabApp(config=config)
    assert app.news_url is None  # no news fetched
    assert issubclass(app.check_for_updates_class, NeverCheckForUpdate)  # the default asks PyPI
    assert MappingKernelManager(config=config).default_kernel_name == "titn-lite"
    kernels = tmp_path / "kernels"
    for name in ("python3", "titn-lite"):
        (kernels / name).mkdir(parents=True)
        (kernels / name / "kernel.json").write_text(json.dumps({"argv": ["python", "{connection_file}"],
                                                                "display_name": name, "language": "python"}))
    assert set(KernelSpecManager(config=config, kernel_dirs=[str(kernels)]).find_kernel_specs()) == {"titn-lite"}
    assert set(KernelSpecManager(kernel_dirs=[str(kernels)]).find_kernel_specs()) == {"python3", "titn-lite"}


def test_the_launch_settings_come_first_and_keep_the_users_own(tmp_path):
    env = lab.launch_environment(tmp_path, {"JUPYTER_CONFIG_PATH": "/theirs", "HOME": "/home/x"})
    assert env["JUPYTER_CONFIG_PATH"] == os.pathsep.join([str(tmp_path), "/theirs"]) and env["HOME"] == "/home/x"
    assert lab.launch_environment(tmp_path, {})["JUPYTER_CONFIG_PATH"] == str(tmp_path)
    command = lab.lab_command("notebooks/", ["--port=9"])
    assert command[1:] == ["-m", "jupyterlab", "notebooks/", "--port=9"]


def test_the_launch_refuses_a_folder_that_is_not_there(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="is not a folder"):
        lab.run_lab(tmp_path / "nowhere")


def test_dataloader_workers_are_capped_to_the_cores_with_one_line():
    notes = []
    assert capped_workers(8, cores=2, note=notes.append) == 2
    assert notes == ["DataLoader workers: 8 asked, 2 used (this machine has 2 CPU cores)"]
    assert capped_workers(2, cores=2, note=notes.append) == 2 and capped_workers(0, cores=2, note=notes.append) == 0
    assert len(notes) == 1  # nothing to say when the machine has enough
    # Enough cores: every worker asked for, silently; one core says "core".
    assert capped_workers(64, cores=64, note=notes.append) == 64
    assert capped_workers(64, cores=128, note=notes.append) == 64
    assert capped_workers(64, cores=16, note=None) == 16 and len(notes) == 1  # note=None: capped without a word
    assert capped_workers(4, cores=1, note=notes.append) == 1
    assert notes[-1] == "DataLoader workers: 4 asked, 1 used (this machine has 1 CPU core)"


def test_the_cores_are_those_this_process_may_run_on(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 5, 9}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert available_cores() == 3  # the affinity, not the machine's count
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows: the machine's count
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert available_cores() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert available_cores() == 1
    monkeypatch.setattr(cpu, "available_cores", lambda: 3)  # without cores=, the cap is available_cores()
    assert capped_workers(64, note=None) == 3 and capped_workers(2, note=None) == 2
