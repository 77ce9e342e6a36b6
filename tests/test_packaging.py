"""The project's own files agree: ranges in the package, exact pins for set-ups, README and CI."""

import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _constraints() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {name.lower(): version for name, version in pins}


def test_the_package_declares_ranges_never_pins():
    project = _project()
    every = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pinned = [r for r in every if "==" in r]
    assert not pinned, f"pins belong in constraints.txt, not the package's metadata: {pinned}"
    floors = {Requirement(r).name: Requirement(r).specifier for r in project["dependencies"]}
    # The floor is the oldest pair CI runs the wheel on (.ci/floor reads it from here).
    assert floors["torch"].contains("2.3.1") and not floors["torch"].contains("2.3.0")
    assert floors["torchvision"].contains("0.18.1") and not floors["torchvision"].contains("0.18.0")


def test_jupyter_is_an_extra_so_a_hosted_images_own_stays():
    project = _project()
    core = {Requirement(r).name for r in project["dependencies"]}
    assert not core & {"jupyterlab", "jupyter-server", "notebook", "ipykernel"}, core
    assert {Requirement(r).name for r in project["optional-dependencies"]["jupyter"]} == {"jupyterlab", "ipykernel"}
    install, _ = _readme_commands()
    assert ".[jupyter," in install  # a clone gets JupyterLab and the kernel the runner needs


def test_ci_runs_the_wheel_at_the_floor_read_from_the_metadata():
    floor = (ROOT / ".ci" / "floor").read_text()
    assert 'tomllib.load(open("pyproject.toml", "rb"))' in floor and "torch|torchvision" in floor
    assert "bash .ci/floor" in (ROOT / ".ci" / "run").read_text()


def test_constraints_pin_every_dependency_inside_its_range():
    project = _project()
    every = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = _constraints()
    for requirement in map(Requirement, every):
        name = requirement.name.lower()
        assert name in pins, f"constraints.txt has no exact version of {name}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement}"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_environment_yml_pins_what_constraints_pin():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda_pins = dict(line.lower().split("==") for line in pip_section if "==" in line)
    project = _project()
    extras = project["optional-dependencies"]
    used_by_the_environment = (project["dependencies"] + extras["jupyter"] + extras["dev"] + extras["classroom"]
                               + extras["book"])
    for requirement in map(Requirement, used_by_the_environment):
        name = requirement.name.lower()
        assert conda_pins.get(name) == _constraints()[name], f"environment.yml: {name}"
    assert "-e .[jupyter,dev,classroom,book]" in pip_section


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```", readme, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readmes_quick_start_block_itself(tmp_path):
    """CI reads the commands from the README (so the two cannot drift) and runs them in order."""
    install, test = _readme_commands()
    assert "-c constraints.txt" in install and "notebooks run --profile smoke" in install and "pytest" in test
    listed = subprocess.run(["bash", str(ROOT / ".ci" / "quickstart"), str(ROOT / "README.md")],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert listed == [install, test]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/quickstart README.md" in ci and "pytest" not in ci  # no test command of CI's own
    assert ".ci/hosted" in ci  # the wheel, installed beside a preinstalled torch
    (tmp_path / "README.md").write_text("# no quick start here\n\n```bash\nrm -rf /\n```\n")
    missing = subprocess.run(["bash", str(ROOT / ".ci" / "quickstart"), str(tmp_path / "README.md")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stdout == "" and "<!-- quickstart -->" in missing.stderr


def test_module_entry_point_exits_2_on_bad_input():
    result = subprocess.run([sys.executable, "-m", "titn_lite", "flops", "--models", "nope"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "unknown model or teacher 'nope'" in result.stderr


def test_the_kit_cites_only_the_paper_and_public_sources():
    """The team's notes on the paper (a file outside the repository) are never cited."""
    texts = [*ROOT.joinpath("titn_lite").rglob("*.py"), *ROOT.joinpath("notebooks").glob("*.ipynb"),
             *ROOT.joinpath("docs").glob("*.md"), ROOT / "README.md"]
    cited = [p.name for p in texts if re.search(r"\bSPEC(\.md)?\b", p.read_text())]
    assert not cited, f"these cite a document outside the repository: {cited}"
