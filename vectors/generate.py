"""Generate the golden vectors in vectors/ (run by hand; the tests only verify them):

    python vectors/generate.py [--models refcodec/models] [--out vectors]

A thin entry point: the generator is refcodec.conformance.vectors (what each vector
holds, and the checks it makes while writing them, are in its docstring and vectors/README.md).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's refcodec

from refcodec.conformance.vectors import main

if __name__ == "__main__":
    main()
