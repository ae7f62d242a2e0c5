"""`python -m lerobot_inspect.cli ...`: the same as the `lerobot-inspect` console script."""

import sys

from lerobot_inspect.cli import main

sys.exit(main())
