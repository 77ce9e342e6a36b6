"""The notebook series. Not code: pyproject.toml installs this folder as the package
``titn_lite.series`` so the notebooks travel inside the wheel (see titn_lite/system/packaged.py)."""
