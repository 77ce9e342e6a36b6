"""pytest runs the notebooks (nbval) at the smoke profile: their parameters cell reads it."""

import os

os.environ.setdefault("TITN_LITE_PROFILE", "smoke")
