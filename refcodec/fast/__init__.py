"""Fast path: the same integers as the NumPy reference, from Numba kernels, AVX512-VNNI and exact float64 BLAS.

``refcodec.fast.rans`` (spec §3) and ``refcodec.fast.layers`` (spec §5) have the
signatures of ``refcodec.decoder.rans`` and ``refcodec.decoder.layers``; tests
prove identical output. Importing this package registers ``impl="fast"`` in the
decoder's implementation table; Numba and the kernels load on its first use. The table's layers
are ``refcodec.fast.threads.run_layers``: the layers of refcodec.fast.layers, serialised under a
Numba threading layer that is not thread-safe (workqueue), so that several Python threads may
decode at once under every threading layer. Its latent reader is ``refcodec.fast.joint.LatentReader``
(refcodec.fast.rans.ValueReader for the values of spec §8.3 and §8.9, and the kernel of §8.10).
"""

from refcodec.decoder.decoding import Implementation, register


def _build() -> Implementation:
    from refcodec.fast import joint, threads

    return Implementation(threads, joint.LatentReader)


register("fast", _build)
