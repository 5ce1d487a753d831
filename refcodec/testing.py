"""Model generators for tests and conformance vectors.

``random_model`` draws a valid integer model file (spec §6) directly, with
weights anywhere inside the bounds of spec §6.4 (``stress=True`` puts every
channel at the bound). ``random_float_params`` draws float parameters for the
exporter (Annex A.1.5), giving a model the encoder can also use.
"""

from __future__ import annotations

import numpy as np

from .cdf import build_table
from .model import ACC_BOUND, ACT_ABS_MAX, NORM_BOUND, save_safetensors, synthesis_shapes


def _table_tensors(rng: np.random.Generator, m: int) -> dict:
    pmfs = [rng.dirichlet(np.full(int(rng.integers(1, 40)), 0.5)) for _ in range(m)]
    table = build_table(pmfs, [float(rng.uniform(1e-6, 0.05)) for _ in range(m)],
                        rng.integers(-20, 5, size=m))
    return {"entropy.y.cdf": table.cdf, "entropy.y.cdf_length": table.cdf_length,
            "entropy.y.offset": table.offset}


def random_model(rng: np.random.Generator, n: int, m: int, stress: bool = False, name: str = "random") -> bytes:
    """A valid integer model file with random synthesis weights and tables."""
    tensors = _table_tensors(rng, m)
    for k, (kind, cin, cout) in enumerate(synthesis_shapes(n, m)):
        p = f"synthesis.{k}"
        if kind == "deconv":
            w = rng.integers(-32768, 32768, size=(cin, cout, 5, 5)).astype(np.int64)
            # scale each output channel so that |bias| + 2^15 * sum|w| fits the bound of spec §6.4
            budget = ACC_BOUND // 2 if stress else int(rng.integers(1 << 30, 1 << 44))
            total = np.abs(w).sum(axis=(0, 2, 3))
            w = (w * (budget // ACT_ABS_MAX) // np.maximum(total, 1)[None, :, None, None]).clip(-32768, 32767)
            room = ACC_BOUND - ACT_ABS_MAX * np.abs(w).sum(axis=(0, 2, 3))
            bias = rng.integers(-room, room + 1) if not stress else room * rng.choice([-1, 1], size=cout)
            shift = rng.integers(10, 48, size=cout) if not stress else np.full(cout, 47)
            if k == 6:
                shift = np.maximum(shift, 20)
            tensors.update({f"{p}.weight": w.astype(np.int16), f"{p}.bias": np.asarray(bias, np.int64),
                            f"{p}.shift": shift.astype(np.uint8)})
        else:
            gmax = (NORM_BOUND >> 30) // cin
            gamma = rng.integers(0, gmax + 1, size=(cout, cin)) if stress else rng.integers(0, gmax // 64 + 1, size=(cout, cin))
            room = NORM_BOUND - (1 << 30) * gamma.sum(axis=1)
            beta = room if stress else rng.integers(1, np.maximum(room // 1024, 2))
            shift = rng.integers(14, 40, size=cout) if not stress else np.full(cout, 26)
            tensors.update({f"{p}.gamma": gamma.astype(np.int32), f"{p}.beta": np.asarray(beta, np.int64),
                            f"{p}.shift": shift.astype(np.uint8)})
    meta = {"format": "refcodec", "format_version": "1", "architecture": "factorized",
            "N": str(n), "M": str(m), "name": name}
    return save_safetensors(tensors, meta)


def random_float_params(rng: np.random.Generator, n: int, m: int) -> dict:
    """Float parameters in the exporter's naming (refcodec.export.float_params)."""
    p = {}
    for prefix, shapes in (("analysis", [(n, 3), (n, n), (n, n), (m, n)]),
                           ("synthesis", [(m, n), (n, n), (n, n), (n, 3)])):
        for j, (a, b) in enumerate(shapes):
            k = 2 * j
            fan_in = (b if prefix == "analysis" else a) * 25 / (1 if prefix == "analysis" else 4)
            p[f"{prefix}.{k}.weight"] = rng.normal(0, 1 / np.sqrt(fan_in), size=(a, b, 5, 5))
            p[f"{prefix}.{k}.bias"] = rng.normal(0, 0.05, size=(b if prefix == "synthesis" else a))
            if j < 3:
                c = a if prefix == "analysis" else b
                p[f"{prefix}.{k + 1}.beta"] = rng.uniform(0.5, 1.5, size=c)
                p[f"{prefix}.{k + 1}.gamma"] = 0.1 * np.eye(c) + rng.uniform(0, 0.01, size=(c, c))
    p["analysis.6.weight"] *= 8  # latents of a few units, as after training
    dims = (1, 3, 3, 3, 1)
    for i in range(4):
        p[f"density.matrices.{i}"] = rng.normal(0.5, 0.2, size=(m, dims[i + 1], dims[i]))
        p[f"density.biases.{i}"] = rng.normal(0, 0.5, size=(m, dims[i + 1], 1))
        if i < 3:
            p[f"density.factors.{i}"] = rng.normal(0, 0.3, size=(m, dims[i + 1], 1))
    spread = rng.uniform(2, 12, size=m)
    p["density.quantiles"] = np.stack([-spread, np.zeros(m), spread], axis=1)[:, None, :]
    return p
