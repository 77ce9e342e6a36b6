"""The wheel's notebooks are the students' copies: ``build_py`` clears every exercise's
answer (``### BEGIN SOLUTION`` ... ``### END SOLUTION``) in the notebooks it puts into
``titn_lite/series``. The clone (and an editable install of it) keeps the solutions: it
is the teacher's copy. Everything else about the package is in pyproject.toml."""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _student_module():
    spec = importlib.util.spec_from_file_location("_titn_lite_student",
                                                  HERE / "titn_lite" / "classroom" / "student_copies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StudentNotebooks(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the clone's notebooks: the teacher's
        student = _student_module()
        for path in sorted((Path(self.build_lib) / "titn_lite" / "series").glob("*.ipynb")):
            path.write_bytes(student.student_copy(path.read_bytes(), path.name))


setup(cmdclass={"build_py": StudentNotebooks})
