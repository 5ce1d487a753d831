"""Decoding from several Python threads at once, under every Numba threading layer.

The fast path's convolutions and IGDN run Numba ``parallel=True`` kernels (refcodec.fast.layers,
refcodec.fast.vnni). Numba runs them on one of three threading layers (``NUMBA_THREADING_LAYER``,
chosen at the first parallel call and fixed for the process): ``tbb`` and ``omp`` may be entered
from several Python threads at once; ``workqueue`` (the one always available) may not, and aborts
the whole process when it is ("Numba workqueue threading layer is terminating: Concurrent access
has been detected"). So the implementation table (``impl="fast"``) runs the layers through
:func:`run_layers` here, which holds a process-wide lock around them unless the active layer is
known to be thread-safe: under ``workqueue``, and before any layer has been chosen, one decode's
layers run at a time (each still on every core); under ``tbb`` and ``omp`` threads run freely. The
rANS and joint-context kernels are not parallel: they never take the lock. Which layer serves, and
whether it is locked, is what :func:`status` reports; tests/test_threads.py checks every layer.
"""

from __future__ import annotations

import threading

import numpy as np

THREAD_SAFE_LAYERS = frozenset({"tbb", "omp"})  # Numba's documentation: workqueue is not thread-safe
_lock = threading.RLock()
_safe: list = []  # [True/False] once the active layer is known


def active_layer() -> str | None:
    """The Numba threading layer of this process, or None before the first parallel kernel ran."""
    import numba

    try:
        return str(numba.threading_layer())
    except ValueError:  # "Threading layer is not initialized."
        return None


def needs_lock() -> bool:
    """Whether parallel kernels must be serialised: the active layer is not thread-safe or not yet known."""
    if _safe:
        return not _safe[0]
    layer = active_layer()
    if layer is None:
        return True
    _safe.append(layer in THREAD_SAFE_LAYERS)
    return not _safe[0]


def run_layers(x: np.ndarray, layers: list) -> list:
    """refcodec.fast.layers.run_layers (spec §5, §8.4, §8.7), safe to call from several threads at once."""
    from refcodec.fast import layers as fast_layers

    if needs_lock():
        with _lock:
            return fast_layers.run_layers(x, layers)
    return fast_layers.run_layers(x, layers)


def status() -> dict:
    """{"layer": the active threading layer or None, "serialised": whether parallel kernels are serialised}."""
    return {"layer": active_layer(), "serialised": needs_lock()}
