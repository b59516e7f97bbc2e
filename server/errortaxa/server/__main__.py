"""``python -m errortaxa.server`` = ``errortaxa serve``."""

import sys

from errortaxa.server import main

sys.exit(main())
