"""``python -m refcodec.conformance.runner``: the conformance runner's former entry point, now
refcodec.conformance.cli (the same as ``refcodec conform``)."""

import sys

from refcodec.conformance.cli import main

if __name__ == "__main__":
    sys.exit(main())
