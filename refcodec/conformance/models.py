"""Model generators for tests and conformance vectors.

``random_model`` draws a valid integer model file (spec §6) directly, with
weights anywhere inside the bounds of spec §6.4 (``stress=True`` puts every
channel at the bound) and, with ``quality_levels``, quality gains (§6.3, §6.4).
``with_gains`` adds random quality gains to a model file; ``random_gains``
draws them; ``with_edition5`` adds the leaky slope and medians of edition 5.
``bound_model`` and ``ties_model`` build the models of the ``bounds-*`` and
``ties-*`` vectors. ``random_float_params`` draws float
parameters for the exporter (Annex A.1.5), giving a model the encoder can also
use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refcodec.decoder.decoding import GAIN_SHIFT
from refcodec.decoder.model import (
    ACC_BOUND,
    ACT_ABS_MAX,
    MAX_GAIN,
    MAX_MEAN_SHIFT,
    MEAN_ARCHITECTURES,
    NORM_BOUND,
    layer_plan,
    parse_container,
)
from refcodec.encoder import floatnet
from refcodec.encoder.cdf import build_table
from refcodec.encoder.export import save_safetensors

IDENTITY_GAIN = 1 << GAIN_SHIFT  # spec §8.11: the gain that multiplies by 1


def _table_tensors(rng: np.random.Generator, name: str, rows: int) -> dict:
    pmfs = [rng.dirichlet(np.full(int(rng.integers(1, 40)), 0.5)) for _ in range(rows)]
    table = build_table(pmfs, [float(rng.uniform(1e-6, 0.05)) for _ in range(rows)],
                        rng.integers(-20, 5, size=rows).tolist())
    return {f"{name}.cdf": table.cdf, f"{name}.cdf_length": table.cdf_length, f"{name}.offset": table.offset}


def _entropy_tensors(rng: np.random.Generator, architecture: str, n: int, m: int, levels: int) -> dict:
    """Random tables of spec §6.3: entropy.y (M rows) for factorized, else entropy.z (N rows) and entropy.y
    (``levels`` rows); the caller adds entropy.y.scale_bound."""
    if architecture == "factorized":
        return _table_tensors(rng, "entropy.y", m)
    return {**_table_tensors(rng, "entropy.z", n), **_table_tensors(rng, "entropy.y", levels)}


def _conv_tensors(rng, name: str, kind: str, cin: int, cout: int, k: int, stress: bool, last: bool) -> dict:
    """Random weights anywhere inside the accumulator bound of spec §6.4 (at the bound if ``stress``)."""
    shape = (cin, cout, k, k) if kind == "deconv" else (cout, cin, k, k)
    axes = (0, 2, 3) if kind == "deconv" else (1, 2, 3)
    w = rng.integers(-32768, 32768, size=shape).astype(np.int64)
    if name == "context.0":
        w[:, :, 2, 2:] = 0
        w[:, :, 3:] = 0
    budget = ACC_BOUND // 2 if stress else int(rng.integers(1 << 30, 1 << 44))
    total = np.expand_dims(np.maximum(np.abs(w).sum(axis=axes), 1), axes)
    w = (w * (budget // ACT_ABS_MAX) // total).clip(-32768, 32767)
    room = ACC_BOUND - ACT_ABS_MAX * np.abs(w).sum(axis=axes)
    bias = room * rng.choice([-1, 1], size=cout) if stress else rng.integers(-room, room + 1)
    shift = np.full(cout, 47) if stress else rng.integers(10, 48, size=cout)
    if last:
        shift = np.maximum(shift, 20)
    return {f"{name}.weight": w.astype(np.int16), f"{name}.bias": np.asarray(bias, np.int64),
            f"{name}.shift": shift.astype(np.uint8)}


def _igdn_tensors(rng, name: str, c: int, stress: bool) -> dict:
    gmax = (NORM_BOUND >> 30) // c
    gamma = rng.integers(0, gmax + 1, size=(c, c)) if stress else rng.integers(0, gmax // 64 + 1, size=(c, c))
    room = NORM_BOUND - (1 << 30) * gamma.sum(axis=1)
    beta = room if stress else rng.integers(1, np.maximum(room // 1024, 2))
    shift = np.full(c, 26) if stress else rng.integers(14, 40, size=c)
    return {f"{name}.gamma": gamma.astype(np.int32), f"{name}.beta": np.asarray(beta, np.int64),
            f"{name}.shift": shift.astype(np.uint8)}


def _mean_shift_tensor(architecture: str, mean_shift: int | None) -> dict:
    """entropy.y.mean_shift (spec §6.3), for the architectures with means, unless None."""
    if mean_shift is None or architecture not in MEAN_ARCHITECTURES:
        return {}
    return {"entropy.y.mean_shift": np.array([mean_shift], np.uint8)}


def random_model(rng: np.random.Generator, n: int, m: int, stress: bool = False, name: str = "random",
                 architecture: str = "factorized", levels: int | None = None,
                 mean_shift: int | None = None, quality_levels: int | None = None) -> bytes:
    """A valid integer model file of ``architecture`` with random layers and tables (spec §6).

    ``levels``: rows of the y table of the hyperprior architectures (default random 1..6),
    with random strictly increasing ``scale_bound`` values. ``mean_shift``: the tensor
    entropy.y.mean_shift of a mean-scale or joint model (None: absent, which means 0).
    ``quality_levels``: L, the quality levels (spec §6.3) of random gains (``random_gains``),
    drawn after everything else, so that the model is ``with_gains`` of the model without
    them: ``random_model(rng, ..., quality_levels=L)`` is ``with_gains(random_model(rng, ...), rng, L)``.
    """
    rows = 0
    if architecture != "factorized":
        rows = levels or int(rng.integers(1, 7))
    tensors = _entropy_tensors(rng, architecture, n, m, rows)
    if architecture != "factorized":
        bound = np.sort(rng.choice(np.arange(-40000, 40000), size=rows - 1, replace=False))
        tensors["entropy.y.scale_bound"] = bound.astype(np.int32)
    tensors.update(_mean_shift_tensor(architecture, mean_shift))
    for group, plan in layer_plan(architecture, n, m).items():
        for k, (kind, cin, cout, size, _) in enumerate(plan):
            label = f"{group}.{k}"
            if kind == "igdn":
                tensors.update(_igdn_tensors(rng, label, cout, stress))
            else:
                tensors.update(_conv_tensors(rng, label, kind, cin, cout, size, stress,
                                             last=group == "synthesis" and k == len(plan) - 1))
    if quality_levels:
        tensors.update(quality_tensors(rng, architecture, n, m, quality_levels))
    meta = {"format": "refcodec", "format_version": "1", "architecture": architecture,
            "N": str(n), "M": str(m), "name": name}
    return save_safetensors(tensors, meta)


def random_gains(rng: np.random.Generator, levels: int, channels: int) -> np.ndarray:
    """I32 (levels, channels) of valid quality gains (spec §6.4: 1 .. MAX_GAIN, in units of 2^-16), each
    of one of four kinds, at random: log-uniform over 1 .. 2^24 (a multiplier of 2^-16 .. 256); odd * 2^k
    (k = 8 .. 15, below 2^20), whose products with some latents are exact ties of Round2 in ApplyGain
    (spec §8.11); one of 1, 2^16 (the identity) and 2^24 (MAX_GAIN); near the identity (2^16 +- 2^12)."""
    shape = (levels, channels)
    log_uniform = np.rint(np.exp2(rng.uniform(0, 24, shape))).astype(np.int64)
    k = rng.integers(8, GAIN_SHIFT, shape)
    ties = (2 * rng.integers(0, np.left_shift(1, 19 - k)) + 1) << k  # odd * 2^k < 2^20: a multiplier below 16
    special = rng.choice(np.array([1, IDENTITY_GAIN, MAX_GAIN]), shape)
    near = IDENTITY_GAIN + rng.integers(-(1 << 12), (1 << 12) + 1, shape)
    kind = rng.integers(0, 4, shape)
    gains = np.choose(kind, [log_uniform, ties, special, near])
    return np.clip(gains, 1, MAX_GAIN).astype(np.int32)


def quality_tensors(rng: np.random.Generator, architecture: str, n: int, m: int, levels: int) -> dict:
    """The quality tensors of spec §6.3 with ``levels`` levels of random gains (``random_gains``):
    quality.y_gain (L, M) and, except for factorized, quality.z_gain (L, N)."""
    tensors = {"quality.y_gain": random_gains(rng, levels, m)}
    if architecture != "factorized":
        tensors["quality.z_gain"] = random_gains(rng, levels, n)
    return tensors


def with_gains(data: bytes, rng: np.random.Generator, levels: int,
               edit: Callable[[dict], object] | None = None) -> bytes:
    """The model file ``data`` with random quality gains of ``levels`` levels (``quality_tensors``, spec
    §6.3) in place of any it had; ``edit(tensors)`` may then change any tensor (every one a writable
    array), for example to break the gains."""
    meta, tensors = parse_container(data)
    tensors = {k: np.array(v) for k, v in tensors.items() if not k.startswith("quality.")}
    tensors.update(quality_tensors(rng, meta["architecture"], int(meta["N"]), int(meta["M"]), levels))
    if edit:
        edit(tensors)
    return save_safetensors(tensors, meta)


def edition5_tensors(rng: np.random.Generator, architecture: str, n: int, m: int, slope: int | None = None,
                     shift: int | None = None) -> dict:
    """The tensors edition 5 adds for CompressAI's models (spec §6.3): ``leaky_slope`` (``slope``, random
    1 .. 32767 if None; mean-scale and joint only) and the medians of the latents coded with a row per
    channel, with ``shift`` fractional bits (random 0 .. MAX_MEAN_SHIFT if None): entropy.z.median and
    entropy.z.mean_shift, or entropy.y.median and entropy.y.mean_shift for factorized."""
    tensors: dict = {}
    if architecture in MEAN_ARCHITECTURES:
        value = slope if slope is not None else int(rng.integers(1, 1 << 15))
        tensors["leaky_slope"] = np.array([value], np.int16)
    shift = int(rng.integers(0, MAX_MEAN_SHIFT + 1)) if shift is None else shift
    name, channels = ("entropy.y", m) if architecture == "factorized" else ("entropy.z", n)
    tensors[f"{name}.median"] = rng.integers(-(3 << shift), (3 << shift) + 1, size=channels).astype(np.int16)
    tensors[f"{name}.mean_shift"] = np.array([shift], np.uint8)
    return tensors


def with_edition5(data: bytes, rng: np.random.Generator, slope: int | None = None,
                  shift: int | None = None) -> bytes:
    """The model file ``data`` with the tensors of ``edition5_tensors`` (replacing any it had)."""
    meta, tensors = parse_container(data)
    tensors = {k: np.array(v) for k, v in tensors.items()}
    tensors.update(edition5_tensors(rng, meta["architecture"], int(meta["N"]), int(meta["M"]), slope, shift))
    return save_safetensors(tensors, meta)


def _bound_conv(kind: str, cin: int, cout: int, k: int, sign: int) -> dict:
    """Weights of magnitude 32767 and sign ``sign`` on every tap one output position sees (for a
    transposed convolution: the 9 taps of output phase (0, 0)), and the bias that makes
    bias + 2^15 * sum|weight| = 2^47 - 1 exactly (spec §6.4): with every input -32768, the
    accumulator at such a position is -sign * (2^47 - 1)."""
    taps = np.zeros((k, k), bool)
    if kind == "deconv":
        taps[::2, ::2] = True
    else:
        taps[:] = True
    shape = (cin, cout, k, k) if kind == "deconv" else (cout, cin, k, k)
    w = np.where(taps, sign * 32767, 0) * np.ones(shape, np.int64)
    total = np.abs(w).sum(axis=(0, 2, 3) if kind == "deconv" else (1, 2, 3))
    bias = -sign * (ACC_BOUND - ACT_ABS_MAX * total)
    return {"weight": w.astype(np.int16), "bias": bias.astype(np.int64), "shift": np.zeros(cout, np.uint8)}


def bound_model(architecture: str, n: int, m: int, name: str = "bounds") -> bytes:
    """A valid model that drives every intermediate of spec chapter 5 to its bound when every latent
    and hyper-latent is -32768 (the conformance vectors ``bounds-*``).

    Every convolution's accumulator reaches -(2^47 - 1) at the positions that see all its taps and
    clamps to -32768 (shift 0), so the next layer sees -32768 again; every IGDN norm is 2^53 - 1
    exactly (x^2 = 2^30, beta + 2^30 * sum gamma = 2^53 - 1), Isqrt gives 94906265 and
    x * Isqrt(T) = -2^15 * 94906265. The ReLU layers of the hyperprior's h_s cannot pass -32768 on:
    there the first accumulator is +(2^47 - 1), and the next ones stay within sum|weight| of the
    bound. The context's masked taps are 0; the entropy tables are small random ones. The scales
    end at a limit of the table selection, the means at -32768.
    """
    rng = np.random.default_rng(0)
    tensors = _entropy_tensors(rng, architecture, n, m, 4)
    if architecture != "factorized":
        tensors["entropy.y.scale_bound"] = np.array([-100, 0, 100], np.int32)
    for group, plan in layer_plan(architecture, n, m).items():
        for k, (kind, cin, cout, size, activation) in enumerate(plan):
            label = f"{group}.{k}"
            if kind == "igdn":
                gamma = np.full((cout, cin), ((1 << 23) - 1) // cin, np.int64)
                beta = NORM_BOUND - (1 << 30) * gamma.sum(axis=1)
                tensors.update({f"{label}.gamma": gamma.astype(np.int32), f"{label}.beta": beta,
                                f"{label}.shift": np.zeros(cout, np.uint8)})
                continue
            sign = -1 if activation == "relu" else 1
            layer = _bound_conv(kind, cin, cout, size, sign)
            if label == "context.0":
                layer["weight"][:, :, 2, 2:] = 0
                layer["weight"][:, :, 3:] = 0
                total = np.abs(layer["weight"].astype(np.int64)).sum(axis=(1, 2, 3))
                layer["bias"] = -(ACC_BOUND - ACT_ABS_MAX * total)
            tensors.update({f"{label}.{part}": v for part, v in layer.items()})
    meta = {"format": "refcodec", "format_version": "1", "architecture": architecture,
            "N": str(n), "M": str(m), "name": name}
    return save_safetensors(tensors, meta)


def ties_model(architecture: str, n: int, m: int, seed: int = 0, name: str = "ties",
               mean_shift: int | None = None) -> bytes:
    """A valid model with small weights (-1, 0, 1), small biases and shifts of 1 and 2, and IGDN
    layers whose norm is a constant 9 .. 15 (Isqrt 3): activations stay far from the clamps, and
    exact ties of Round2 (half of 2^shift) are frequent in every layer, so a decoder that rounds a
    tie the wrong way in any layer changes the output (the conformance vectors ``ties-*``)."""
    rng = np.random.default_rng(seed)
    tensors = _entropy_tensors(rng, architecture, n, m, 6)
    if architecture != "factorized":
        tensors["entropy.y.scale_bound"] = np.array([-12, -4, 0, 4, 12], np.int32)
    tensors.update(_mean_shift_tensor(architecture, mean_shift))
    for group, plan in layer_plan(architecture, n, m).items():
        for k, (kind, cin, cout, size, activation) in enumerate(plan):
            label = f"{group}.{k}"
            if kind == "igdn":
                tensors.update({f"{label}.gamma": np.zeros((cout, cin), np.int32),
                                f"{label}.beta": rng.integers(9, 16, size=cout).astype(np.int64),
                                f"{label}.shift": np.full(cout, 2, np.uint8)})
                continue
            shape = (cin, cout, size, size) if kind == "deconv" else (cout, cin, size, size)
            w = rng.integers(-1, 2, size=shape)
            if label == "context.0":
                w[:, :, 2, 2:] = 0
                w[:, :, 3:] = 0
            pixels = activation == "pixels"
            shift = np.full(cout, 1 if pixels else 2)
            bias = 128 * 2 + rng.integers(-3, 4, size=cout) if pixels else rng.integers(-3, 4, size=cout)
            tensors.update({f"{label}.weight": w.astype(np.int16), f"{label}.bias": bias.astype(np.int64),
                            f"{label}.shift": shift.astype(np.uint8)})
    meta = {"format": "refcodec", "format_version": "1", "architecture": architecture,
            "N": str(n), "M": str(m), "name": name}
    return save_safetensors(tensors, meta)


def random_float_params(rng: np.random.Generator, n: int, m: int, architecture: str = "factorized") -> dict:
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
    if architecture != "factorized":
        for j, (cout, cin, k) in enumerate(floatnet.hyper_analysis_kernels(architecture, n, m)):
            p[f"hyper_analysis.{j}.weight"] = rng.normal(0, 1 / np.sqrt(cin * k * k), size=(cout, cin, k, k))
            p[f"hyper_analysis.{j}.bias"] = rng.normal(0, 0.05, size=cout)
        for group, layers in layer_plan(architecture, n, m).items():
            if group == "synthesis":
                continue
            for j, (kind, cin, cout, k, _) in enumerate(layers):
                shape = (cin, cout, k, k) if kind == "deconv" else (cout, cin, k, k)
                p[f"{group}.{j}.weight"] = rng.normal(0, 1 / np.sqrt(cin * k * k), size=shape)
                p[f"{group}.{j}.bias"] = rng.normal(0, 0.05, size=cout)
        if architecture == "joint":
            p["context.0.weight"][:, :, 2, 2:] = 0
            p["context.0.weight"][:, :, 3:] = 0
        last = "entropy_parameters.2" if architecture == "joint" else "hyper_synthesis.2"
        p[f"{last}.bias"][:m] += 2.0  # scales of a few units
    dims = (1, 3, 3, 3, 1)
    c = m if architecture == "factorized" else n  # the factorized density codes y, or z
    for i in range(4):
        p[f"density.matrices.{i}"] = rng.normal(0.5, 0.2, size=(c, dims[i + 1], dims[i]))
        p[f"density.biases.{i}"] = rng.normal(0, 0.5, size=(c, dims[i + 1], 1))
        if i < 3:
            p[f"density.factors.{i}"] = rng.normal(0, 0.3, size=(c, dims[i + 1], 1))
    spread = rng.uniform(2, 12, size=c)
    p["density.quantiles"] = np.stack([-spread, np.zeros(c), spread], axis=1)[:, None, :]
    return p
