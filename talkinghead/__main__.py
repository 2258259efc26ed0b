"""python -m talkinghead -> cli.main()."""

import sys

from .cli import main

sys.exit(main())
