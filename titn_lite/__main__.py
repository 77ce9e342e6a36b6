import sys

from titn_lite.cli import main

sys.exit(main())
