"""Data embedded in the kit. pyproject.toml installs this folder as the package
``titn_lite.assets`` so the data travels inside the wheel (see titn_lite/system/packaged.py)."""
