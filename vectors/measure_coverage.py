"""Measure what the golden vectors in vectors/ exercise (run by hand; not a test):

    python vectors/measure_coverage.py [--vectors DIR] [--json FILE] [--ties]

A thin entry point: the measurement is refcodec.conformance.coverage (code and branch
coverage of the reference decoder, the error checks each negative vector reaches, the
clauses the manifests list and, with --ties, the layers whose rounding ties are checked);
it prints the report and writes vectors/coverage.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's refcodec

from refcodec.conformance.coverage import main

if __name__ == "__main__":
    sys.exit(main())
