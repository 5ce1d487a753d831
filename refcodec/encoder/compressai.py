"""Import a CompressAI checkpoint as an integer refcodec model (informative, Annex A.3.3).

    refcodec import compressai --arch mbt2018 checkpoint.pth.tar model.safetensors [--calibrate DIR]

A CompressAI checkpoint is a PyTorch state dict (``torch.save``), bare or wrapped as
``{"state_dict": ...}`` by CompressAI's training example, with or without the quantised
CDF buffers ``update()`` adds. It is read with ``torch.load(weights_only=True)``, which
unpickles tensors and plain containers only — never CompressAI, never arbitrary code —
so torch (the ``train`` extra) is needed, CompressAI is not. The tensors are checked
(architecture, names, shapes, finite values), renamed to the float parameters of
refcodec.encoder.floatnet, and exported as any float model is (Annex A.1.5), with what
CompressAI does that refcodec's own models do not (Annex A.3.2):

- the leaky ReLUs of mbt2018-mean and mbt2018 have the slope 0.01 (model tensor
  ``leaky_slope``, spec §5.6);
- the entropy bottleneck codes round(z − median) and reconstructs it plus the median
  (model tensors ``entropy.z.median``, and ``entropy.y.median`` for bmshj2018-factorized,
  spec §8.3);
- its quantised CDFs, and the Gaussian conditional's 64 scales from 0.11 to 256 with its
  tables, are taken as they are (rebuilt by CompressAI's own procedure when the
  checkpoint has no CDF buffers);
- mbt2018's h_a sees y through leaky ReLUs, and its entropy parameters see
  (h_s output, context) in this order.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np

from refcodec.decoder.cdf import CdfTable, cdf_table_check
from refcodec.decoder.errors import InputError, ModelError
from refcodec.decoder.model import layer_plan
from refcodec.encoder.cdf import build_table

ARCHITECTURES = {  # CompressAI zoo name -> refcodec architecture
    "bmshj2018-factorized": "factorized",
    "bmshj2018-hyperprior": "hyperprior",
    "mbt2018-mean": "mean-scale",
    "mbt2018": "joint",
}
LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default, which CompressAI's models use
TAIL_MASS = 1e-9  # of CompressAI's EntropyBottleneck and GaussianConditional
SCALE_TABLE = (0.11, 256.0, 64)  # compressai.models.google.get_scale_table
CLAUSE = "A.3.3"


def fail(what: str) -> InputError:
    return InputError(what, CLAUSE)


# ---------------------------------------------------------------------------
# Reading the checkpoint


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a CompressAI checkpoint as NumPy arrays, unwrapped and with current names."""
    try:
        import torch
    except ImportError:
        raise fail("reading a CompressAI checkpoint needs torch: pip install 'refcodec[train]'") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise fail(f"{path}: no such file") from None
    except IsADirectoryError:
        raise fail(f"{path}: is a directory") from None
    except Exception as e:  # truncated zip, not a pickle, a pickle of something else: all the same to us
        raise fail(f"{path} is not a PyTorch checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise fail(f"{path} holds no state dict of tensors (bare, or as 'state_dict')")
    out = {}
    for key, value in obj.items():
        name = legacy_name(key[len("module."):] if key.startswith("module.") else key)
        out[name] = value.detach().cpu().numpy() if value.dtype != torch.bfloat16 else value.float().numpy()
    return out


def legacy_name(key: str) -> str:
    """CompressAI before 1.1 named the bottleneck's parameters _matrix0, _bias0, _factor0: today's names."""
    prefix, _, last = key.rpartition(".")
    for old, new in (("_matrix", "matrices"), ("_bias", "biases"), ("_factor", "factors")):
        if prefix == "entropy_bottleneck" and last.startswith(old) and last[len(old):].isdigit():
            return f"{prefix}.{new}.{last[len(old):]}"
    return key


def architecture_of(sd: dict) -> str:
    """The CompressAI class a state dict is of, from the modules it has (h_s of mbt2018-mean ends in 2M)."""
    if "context_prediction.weight" in sd:
        return "mbt2018"
    if not any(k.startswith("h_s.") for k in sd):
        return "bmshj2018-factorized"
    last, latent = sd.get("h_s.4.weight"), sd.get("g_a.6.weight")
    if last is not None and latent is not None and last.shape[0] == 2 * latent.shape[0]:
        return "mbt2018-mean"
    return "bmshj2018-hyperprior"


def expected_shapes(zoo: str, n: int, m: int) -> dict[str, tuple]:
    """Every float tensor a CompressAI checkpoint of class ``zoo`` must have, with its shape."""
    shapes: dict[str, tuple] = {}
    for group, cin, cout in (("g_a", (3, n, n, n), (n, n, n, m)), ("g_s", (m, n, n, n), (n, n, n, 3))):
        for j in range(4):
            w = (cout[j], cin[j], 5, 5) if group == "g_a" else (cin[j], cout[j], 5, 5)
            shapes |= {f"{group}.{2 * j}.weight": w, f"{group}.{2 * j}.bias": (cout[j],)}
            if j < 3:
                shapes |= {f"{group}.{2 * j + 1}.beta": (n,), f"{group}.{2 * j + 1}.gamma": (n, n)}
    arch = ARCHITECTURES[zoo]
    if arch != "factorized":
        shapes |= {"h_a.0.weight": (n, m, 3, 3), "h_a.0.bias": (n,), "h_a.2.weight": (n, n, 5, 5),
                   "h_a.2.bias": (n,), "h_a.4.weight": (n, n, 5, 5), "h_a.4.bias": (n,)}
        plan = layer_plan(arch, n, m)
        for j, (kind, cin_, cout_, k, _) in enumerate(plan["hyper_synthesis"]):
            shapes |= {f"h_s.{2 * j}.weight": (cin_, cout_, k, k) if kind == "deconv" else (cout_, cin_, k, k),
                       f"h_s.{2 * j}.bias": (cout_,)}
        if arch == "joint":
            shapes |= {"context_prediction.weight": (2 * m, m, 5, 5), "context_prediction.bias": (2 * m,)}
            for j, (_, cin_, cout_, _, _) in enumerate(plan["entropy_parameters"]):
                shapes |= {f"entropy_parameters.{2 * j}.weight": (cout_, cin_, 1, 1),
                           f"entropy_parameters.{2 * j}.bias": (cout_,)}
    c = m if arch == "factorized" else n
    shapes["entropy_bottleneck.quantiles"] = (c, 1, 3)
    return shapes


def check_state_dict(sd: dict, zoo: str) -> tuple[int, int]:
    """(N, M) of a state dict that is a complete, finite CompressAI checkpoint of class ``zoo``."""
    found = architecture_of(sd)
    if found != zoo:
        raise fail(f"the checkpoint is a {found} model, not {zoo}")
    for key in ("g_a.0.weight", "g_a.6.weight"):
        if key not in sd or sd[key].ndim != 4:
            raise fail(f"tensor {key} is missing or not 4-dimensional")
    n, m = sd["g_a.0.weight"].shape[0], sd["g_a.6.weight"].shape[0]
    shapes = expected_shapes(zoo, n, m)
    depth = sum(1 for k in sd if k.startswith("entropy_bottleneck.matrices."))
    if depth < 1:
        raise fail("tensor entropy_bottleneck.matrices.0 is missing")
    widths = [1] + [sd[f"entropy_bottleneck.matrices.{i}"].shape[1] for i in range(depth)
                    if f"entropy_bottleneck.matrices.{i}" in sd]
    c = shapes["entropy_bottleneck.quantiles"][0]
    for i in range(depth):
        shapes[f"entropy_bottleneck.matrices.{i}"] = (c, widths[i + 1], widths[i])
        shapes[f"entropy_bottleneck.biases.{i}"] = (c, widths[i + 1], 1)
        if i < depth - 1:
            shapes[f"entropy_bottleneck.factors.{i}"] = (c, widths[i + 1], 1)
    for key, shape in shapes.items():
        if key not in sd:
            raise fail(f"tensor {key} is missing")
        if tuple(sd[key].shape) != shape:
            raise fail(f"tensor {key} has shape {tuple(sd[key].shape)}, expected {shape}")
        if not np.issubdtype(sd[key].dtype, np.floating) or not np.isfinite(sd[key]).all():
            raise fail(f"tensor {key} is not finite floating point (NaN or infinite weights)")
    if widths[-1] != 1:
        raise fail("the last entropy_bottleneck matrix must have one output")
    return n, m


# ---------------------------------------------------------------------------
# To float parameters (refcodec.encoder.floatnet's names)


def _nonneg(p: np.ndarray, minimum: float) -> np.ndarray:
    """CompressAI's NonNegativeParametrizer (pedestal 2^-36): the value a GDN parameter stands for."""
    pedestal = 2.0**-36
    return np.maximum(p, math.sqrt(minimum + pedestal)) ** 2 - pedestal


def float_params(sd: dict, zoo: str) -> dict:
    """Float parameters for refcodec.encoder.export from a checked CompressAI state dict."""
    t = {k: np.asarray(v, np.float64) if np.issubdtype(v.dtype, np.floating) else v for k, v in sd.items()}
    p: dict = {}
    for src, dst in (("g_a", "analysis"), ("g_s", "synthesis")):
        for k in range(7):
            if k % 2 == 0:
                p[f"{dst}.{k}.weight"], p[f"{dst}.{k}.bias"] = t[f"{src}.{k}.weight"], t[f"{src}.{k}.bias"]
            else:
                p[f"{dst}.{k}.beta"] = _nonneg(t[f"{src}.{k}.beta"], 1e-6)
                p[f"{dst}.{k}.gamma"] = _nonneg(t[f"{src}.{k}.gamma"], 0.0)
    arch = ARCHITECTURES[zoo]
    for src, dst in (("h_a", "hyper_analysis"), ("h_s", "hyper_synthesis"), ("entropy_parameters",
                                                                             "entropy_parameters")):
        for j in range(3):
            if f"{src}.{2 * j}.weight" in t:
                p[f"{dst}.{j}.weight"], p[f"{dst}.{j}.bias"] = t[f"{src}.{2 * j}.weight"], t[f"{src}.{2 * j}.bias"]
    if arch == "joint":
        mask = np.zeros((5, 5))
        mask[:2], mask[2, :2] = 1, 1  # CompressAI's MaskedConv2d type A
        p["context.0.weight"] = t["context_prediction.weight"] * mask
        p["context.0.bias"] = t["context_prediction.bias"]
        w = p["entropy_parameters.0.weight"]  # CompressAI: cat(h_s output, context); refcodec: (context, h_s)
        half = w.shape[1] // 2
        p["entropy_parameters.0.weight"] = np.concatenate([w[:, half:], w[:, :half]], axis=1)
    if arch in ("mean-scale", "joint"):
        p["leaky_slope"] = LEAKY_SLOPE  # h_s, the entropy parameters and (encoder) h_a
    for key, value in t.items():
        if key.startswith("entropy_bottleneck.") and key.split(".")[1] in ("matrices", "biases", "factors"):
            p["density." + key.split(".", 1)[1]] = value
    p["density.quantiles"] = t["entropy_bottleneck.quantiles"]
    p["density.medians"] = t["entropy_bottleneck.quantiles"][:, 0, 1]
    p["tables.density"] = imported_table(sd, "entropy_bottleneck") or bottleneck_table(p)
    if arch != "factorized":
        scales = scale_table(sd)
        p["gaussian.scales"] = scales
        p["gaussian.thresholds"] = scales[:-1]  # CompressAI's rule: the smallest table at least as wide
        p["tables.gaussian"] = imported_table(sd, "gaussian_conditional", scales.size) or gaussian_table(scales)
    return p


def scale_table(sd: dict) -> np.ndarray:
    """The Gaussian conditional's scale table: the checkpoint's, or CompressAI's get_scale_table()."""
    table = sd.get("gaussian_conditional.scale_table")
    if table is None or table.size == 0:
        lo, hi, levels = SCALE_TABLE
        return np.exp(np.linspace(math.log(lo), math.log(hi), levels)).astype(np.float32).astype(np.float64)
    table = np.asarray(table, np.float64).ravel()
    if not (np.isfinite(table).all() and table[0] > 0 and (np.diff(table) > 0).all()):
        raise fail("tensor gaussian_conditional.scale_table is not a positive increasing sequence")
    return table


def imported_table(sd: dict, module: str, rows: int | None = None) -> CdfTable | None:
    """The quantised CDF buffers CompressAI's update() stored, checked as spec §4.2 requires; None if absent."""
    names = [f"{module}.{b}" for b in ("_quantized_cdf", "_cdf_length", "_offset")]
    if any(sd.get(k) is None or sd[k].size == 0 for k in names):
        return None
    cdf, length, offset = (np.asarray(sd[k]) for k in names)
    if cdf.ndim != 2 or length.shape != (cdf.shape[0],) or offset.shape != (cdf.shape[0],) \
            or (rows is not None and cdf.shape[0] != rows):
        raise fail(f"the CDF buffers of {module} have inconsistent shapes")
    try:
        return cdf_table_check(cdf.astype(np.int32), length.astype(np.int32), offset.astype(np.int32), module)
    except ModelError as e:
        raise fail(f"the CDF buffers of {module} are not a valid table: {e.message}") from None


def _logits_cumulative(p: dict, x: np.ndarray) -> np.ndarray:
    depth = sum(1 for k in p if k.startswith("density.matrices."))
    for i in range(depth):
        x = np.logaddexp(0.0, p[f"density.matrices.{i}"]) @ x + p[f"density.biases.{i}"]
        if i < depth - 1:
            x = x + np.tanh(p[f"density.factors.{i}"]) * np.tanh(x)
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def bottleneck_table(p: dict) -> CdfTable:
    """The entropy bottleneck's table as CompressAI's EntropyBottleneck.update() builds it.

    Row c covers the values −ceil(median − q0) … ceil(q2 − median) around the median, its
    probabilities taken at median + k; the escape's is the mass outside.
    """
    q = p["density.quantiles"][:, 0]
    medians = q[:, 1]
    minima = np.maximum(np.ceil(medians - q[:, 0]), 0).astype(np.int64)
    maxima = np.maximum(np.ceil(q[:, 2] - medians), 0).astype(np.int64)
    length = minima + maxima + 1
    if length.max() + 2 > 4096:
        raise fail("the entropy bottleneck's quantiles span more values than a CDF row holds (spec §4.2)")
    samples = np.arange(length.max())[None, None, :] + (medians - minima)[:, None, None]
    lower = _logits_cumulative(p, samples - 0.5)[:, 0]
    upper = _logits_cumulative(p, samples + 0.5)[:, 0]
    pmf = _sigmoid(upper) - _sigmoid(lower)
    tails = _sigmoid(lower[:, 0]) + _sigmoid(-upper[:, -1])  # CompressAI's: at the longest row's end
    return build_table([pmf[c, : length[c]] for c in range(len(length))], list(tails), list(-minima))


def gaussian_table(scales: np.ndarray) -> CdfTable:
    """The Gaussian conditional's table as CompressAI's GaussianConditional.update() builds it."""
    multiplier = -statistics.NormalDist().inv_cdf(TAIL_MASS / 2)
    centers = np.ceil(scales * multiplier).astype(np.int64)
    normal = statistics.NormalDist()
    pmfs, tails = [], []
    for sigma, center in zip(scales, centers, strict=True):
        v = np.abs(np.arange(2 * center + 1) - center)
        upper = np.array([normal.cdf(x) for x in (0.5 - v) / sigma])
        lower = np.array([normal.cdf(x) for x in (-0.5 - v) / sigma])
        pmfs.append(upper - lower)
        tails.append(2 * lower[0])
    return build_table(pmfs, tails, list(-centers))


def import_checkpoint(path: Path, zoo: str) -> tuple[dict, str]:
    """(float parameters, refcodec architecture) of the CompressAI checkpoint ``path`` of class ``zoo``."""
    if zoo not in ARCHITECTURES:
        raise fail(f"unknown CompressAI architecture {zoo!r}; one of {', '.join(ARCHITECTURES)}")
    sd = read_state_dict(path)
    check_state_dict(sd, zoo)
    return float_params(sd, zoo), ARCHITECTURES[zoo]


# ---------------------------------------------------------------------------
# The integer model


def synthetic_pictures(count: int = 8, size: int = 256, seed: int = 1) -> list:
    """Calibration pictures when no folder of photos is given: deterministic 1/f noise (the spectrum of
    natural images) under random flat rectangles (their edges), uint8 RGB. Real photos calibrate better."""
    rng = np.random.default_rng(seed)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    f[0, 0] = 1.0
    pictures = []
    for _ in range(count):
        base = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) / f))
        mix = rng.normal(1.0, 0.3, 3)[:, None, None] * base + 0.3 * np.real(
            np.fft.ifft2(np.fft.fft2(rng.standard_normal((3, size, size))) / f))
        img = 128 + 60 * (mix - mix.mean()) / mix.std()
        for _ in range(12):
            y0, x0 = rng.integers(0, size, 2)
            img[:, y0 : y0 + rng.integers(8, 96), x0 : x0 + rng.integers(8, 96)] = rng.uniform(0, 255, (3, 1, 1))
        pictures.append(np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(1, 2, 0))
    return pictures


def calibration_pictures(folder: Path | None, count: int = 16) -> list:
    """Every k-th picture of ``folder`` (up to ``count``), or ``synthetic_pictures`` without a folder."""
    if folder is None:
        return synthetic_pictures()
    files = sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".ppm"))
    if not files:
        raise fail(f"no PNG, JPEG or PPM pictures in {folder}")
    return files[:: max(1, len(files) // count)][:count]


def import_model(checkpoint: Path, zoo: str, calibration: Path | None = None, name: str | None = None) -> bytes:
    """The bytes of a refcodec model file (spec §6) for a CompressAI checkpoint, checked as a decoder checks
    it: weights whose integer form would exceed the bounds of spec §6.4 are an InputError, and so is
    anything wrong with the checkpoint (Annex A.3.3)."""
    from refcodec.decoder.model import load_model
    from refcodec.encoder.export import export

    p, arch = import_checkpoint(Path(checkpoint), zoo)
    info = {"source": "compressai", "class": zoo, "checkpoint": Path(checkpoint).name,
            "calibration": str(calibration) if calibration else "synthetic"}
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # huge weights: reported below, not warned about
            data = export(p, calibration_pictures(calibration), name or f"{zoo} (CompressAI)", info, arch)
    except (OverflowError, ValueError) as e:
        raise fail(f"the checkpoint's weights cannot be made integer ({e})") from None
    try:
        load_model(data)
    except ModelError as e:
        raise fail(f"the checkpoint's weights exceed the bounds of spec §{e.clause}: {e.message}") from None
    return data
