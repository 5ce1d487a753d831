"""``python -m refcodec.conformance``: the conformance runner, the same as ``refcodec conform``."""

import sys

from refcodec.conformance.cli import main

sys.exit(main())
