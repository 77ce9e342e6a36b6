"""Training: the profiles, losses and metrics; what a run is (its config, identity, folder
and checkpoint); the engine (``engine.train_step``, ``engine.fit``); and the run layer that
starts, resumes and reuses runs (``runs.train_or_load``)."""

from titn_lite.train.config import TrainConfig
from titn_lite.train.profiles import get_profile, list_profiles
from titn_lite.train.run_folder import RunFolder, RunResult
from titn_lite.train.runs import train, train_or_load

__all__ = ["RunFolder", "RunResult", "TrainConfig", "get_profile", "list_profiles", "train", "train_or_load"]
