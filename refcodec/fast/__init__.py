"""Fast path: the same integers as the NumPy reference, from Numba kernels, AVX512-VNNI and exact float64 BLAS.

``refcodec.fast.rans`` (spec §3) and ``refcodec.fast.layers`` (spec §5) have the
signatures of ``refcodec.rans`` and ``refcodec.layers``; tests prove identical output.
"""
