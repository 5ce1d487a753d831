"""Numba fast path."""
