"""`python -m data_fixtures OUT --episodes 50 --cameras 2 ...`: write a generated dataset."""

import sys

from data_fixtures.generator import main

sys.exit(main())
