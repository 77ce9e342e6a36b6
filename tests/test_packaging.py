"""The project's own files agree: pins, README commands and CI."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_pins_what_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = project["dependencies"] + project["optional-dependencies"]["dev"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda_pins = [d for d in pip_section if not d.startswith("-e")]
    assert sorted(conda_pins) == sorted(pyproject)
    assert "torch==2.14.1" in pyproject and "torchvision==0.29.1" in pyproject


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```", readme, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readmes_install_and_test_commands():
    install, test = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    install_step = install.split(" && ")[:-1]  # CI installs, then tests instead of running the kit
    for step in install_step + [test]:
        assert step in ci, step


def test_module_entry_point_exits_2_on_bad_input():
    result = subprocess.run([sys.executable, "-m", "titn_lite", "profile", "--models", "nope"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "unknown model or teacher 'nope'" in result.stderr
