"""Running a decoder under test (spec §9.3): its command template, processes, timeouts and files.

``--decoder`` is a command line, split into words as a POSIX shell would (``shlex``) and run
without a shell. Within each word ``{stream}``, ``{model}`` and ``{output}`` become the paths of
the vector's stream, its model file and the file the decoder shall write, ``{dump}`` an empty
directory for the stages of spec §9.4 and ``{python}`` the running interpreter; substitution
happens after splitting, so paths with spaces reach the decoder as single arguments. Each decode
runs in a temporary directory of its own, where no output file exists beforehand (spec §9.3), in a
session of its own, so that a timeout or an interrupt kills everything the decoder started.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from refcodec.conformance import UsageError
from refcodec.conformance.suite import Vector

PLACEHOLDER = re.compile(r"\{(stream|model|output|dump|python)\}")
REQUIRED_PLACEHOLDERS = ("stream", "output")
ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOT_XML_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
MAX_LINE = 500  # characters kept of a decoder's last stderr line


@dataclass(frozen=True)
class Config:
    """How to run and judge the decoder; ``dump``: the template has ``{dump}`` (compare stages);
    ``strict``: a negative vector whose error class the decoder does not report fails."""

    template: list[str]
    output_format: str
    diff_dir: Path
    dump: bool = False
    strict: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a decoder did: ``status`` is its exit status (negative: killed by that
    signal) or None when it was killed after the timeout."""

    status: int | None
    stderr: str
    seconds: float


# --- the decoder command ---------------------------------------------------


def placeholders(words: list[str]) -> set[str]:
    """The names of the placeholders in a template's words."""
    return {name for word in words for name in PLACEHOLDER.findall(word)}


def parse_template(template: str) -> list[str]:
    """The words of a ``--decoder`` template, placeholders not yet substituted."""
    try:
        words = shlex.split(template)
    except ValueError as e:
        raise UsageError(f"--decoder: {e}") from None
    missing = [f"{{{name}}}" for name in REQUIRED_PLACEHOLDERS if name not in placeholders(words)]
    if missing:
        raise UsageError(f"--decoder must contain {' and '.join(missing)}: {template!r}")
    return words


def build_command(words: list[str], paths: dict[str, str]) -> list[str]:
    """``words`` with every placeholder replaced, in one pass (a path containing
    ``{model}`` stays as it is)."""
    return [PLACEHOLDER.sub(lambda m: paths[m.group(1)], word) for word in words]


# --- processes ---------------------------------------------------------------


class Decoders:
    """Runs decoder processes, each in a session of its own, so that a timeout or
    an interrupt kills everything a decoder started, not only the decoder."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._stopped = False

    def run(self, argv: list[str]) -> Outcome:
        start = time.monotonic()
        proc = self._start(argv)
        try:
            _, err = proc.communicate(timeout=self.timeout)
            status = proc.returncode
        except subprocess.TimeoutExpired:
            kill_group(proc)
            _, err = proc.communicate()
            status = None
        finally:
            with self._lock:
                self._running.discard(proc)
        return Outcome(status, last_line(err), round(time.monotonic() - start, 3))

    def _start(self, argv: list[str]) -> subprocess.Popen:
        with self._lock:
            if self._stopped:
                raise CancelledError
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
            except OSError as e:
                raise UsageError(f"cannot run the decoder {argv[0]!r}: {e.strerror or e}") from None
            self._running.add(proc)
        return proc

    def stop(self) -> None:
        """Kill every running decoder and start no more."""
        with self._lock:
            self._stopped = True
            for proc in self._running:
                kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):  # the group has already exited
        os.killpg(proc.pid, signal.SIGKILL)


def last_line(output: bytes) -> str:
    """The last non-empty line of a decoder's output, as plain text that is also valid in XML."""
    lines = output.decode("utf-8", "replace").splitlines()
    line = next((s.strip() for s in reversed(lines) if s.strip()), "")
    line = NOT_XML_TEXT.sub("?", ESCAPE_SEQUENCE.sub("", line))
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


@contextmanager
def decoded(vector: Vector, config: Config, decoders: Decoders):
    """Run the decoder on ``vector`` in a temporary directory of its own; yields (its
    :class:`Outcome`, the path of its output file, its stage directory), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="refcodec-conform-") as tmp:
        output, dump = Path(tmp) / f"output.{config.output_format}", Path(tmp) / "stages"
        dump.mkdir()
        paths = {"stream": str(vector.stream), "model": str(vector.model), "output": str(output),
                 "dump": str(dump), "python": sys.executable}
        yield decoders.run(build_command(config.template, paths)), output, dump


def run_parallel(task, items: list, labels: list[str], jobs: int, decoders: Decoders) -> list:
    """``task(item)`` for every item, ``jobs`` at a time, in the order of ``items``;
    on an error or an interrupt every running decoder is killed."""
    results: list = [None] * len(items)
    executor = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {executor.submit(task, item): i for i, item in enumerate(items)}
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()
            show_progress(done, len(items), labels[futures[future]])
    except BaseException:
        decoders.stop()
        raise
    finally:
        executor.shutdown(cancel_futures=True)
    return results


def show_progress(done: int, total: int, name: str) -> None:
    """A counter on stderr when it is a terminal, erased after the last vector."""
    if sys.stderr.isatty():
        line = "" if done == total else f"[{done}/{total}] {name}"
        sys.stderr.write(f"\r\033[K{line}")
        sys.stderr.flush()
