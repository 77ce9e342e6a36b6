"""titn-lite: a teaching kit for vision transformers and knowledge distillation (TITN).

The package in layers, each folder standing on the ones before it: ``system``, ``models``,
``data``, ``train``, ``results``, ``classroom``, then the ``titn-lite`` command (``cli``).
``import titn_lite`` loads the models only (not torchvision, matplotlib or Jupyter), and
offers the same names as ``titn_lite.models``: ``create_model``, ``create_teacher``, ...
"""

from titn_lite.models import *  # noqa: F403 (the front door: the models' own public names)
from titn_lite.models import __all__  # noqa: F401

__version__ = "0.1.0"
