"""Progress on stderr for the command line (tqdm): the files of a run, and the picture rows of a long encode or
decode.

A bar is drawn only when stderr is a terminal and the user did not ask for quiet (``wanted``), never into a
pipe, a log file or a test's captured output. The bar of one picture (``row_progress``) appears only once
the operation has run ``DELAY`` seconds, so quick ones show nothing; it moves as the encoder and decoder
report rows completed through their ``progress(rows done, rows in all)`` callbacks
(refcodec.decoder.decoding.Progress).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

DELAY = 2.0  # seconds an encode or decode runs before its bar appears (read at each use: tests set it)


def wanted(quiet: bool) -> bool:
    """Whether to draw progress: not --quiet, and stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


class RowProgress:
    """A tqdm bar of ``total`` rows named ``label`` on stderr, shown after ``delay`` seconds; called as
    ``progress(rows done, rows in all)``."""

    def __init__(self, total: int, label: str, delay: float):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=label, unit="row", file=sys.stderr, leave=False, delay=delay)

    def __call__(self, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


@contextlib.contextmanager
def row_progress(total: int, label: str, quiet: bool) -> Iterator[RowProgress | None]:
    """A ``RowProgress`` of ``total`` rows if progress is ``wanted``, else None; the bar is removed at the end."""
    if not wanted(quiet):
        yield None
        return
    bar = RowProgress(total, label, DELAY)
    try:
        yield bar
    finally:
        bar.close()
