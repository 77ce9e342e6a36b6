"""A clean first hour: the kit's JupyterLab launch settings and the DataLoader's workers.

(The launch itself, in a browser, is tests/test_browser.py.)
"""

import json
import os

from titn_lite import lab
from titn_lite.data import available_cores, capped_workers


def test_the_launch_config_turns_off_news_and_updates_and_chooses_the_kits_kernel(tmp_path):
    folder = lab.write_launch_config(tmp_path, "titn-lite")
    page = json.loads((folder / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"] == {"@jupyterlab/apputils-extension:announcements": True}
    server = json.loads((folder / "jupyter_server_config.json").read_text())
    assert server["LabApp"]["news_url"] is None
    assert server["LabApp"]["check_for_updates_class"] == "jupyterlab.NeverCheckForUpdate"
    assert server["MappingKernelManager"]["default_kernel_name"] == "titn-lite"
    assert server["KernelSpecManager"]["allowed_kernelspecs"] == ["titn-lite"]
    # JupyterLab can load the class the config names.
    import jupyterlab

    assert jupyterlab.NeverCheckForUpdate


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
    assert capped_workers(64, note=None) == available_cores() or available_cores() >= 64
