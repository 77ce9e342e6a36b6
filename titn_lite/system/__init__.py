"""The machine and the files, under everything else: mistakes in what was asked
(``usage``), atomic writes (``files``), the installed package's data (``packaged``),
downloads (``downloads``), CPU cores (``cpu``) and devices (``devices``)."""

from titn_lite.system.usage import UsageError, check_positive_int

__all__ = ["UsageError", "check_positive_int"]
