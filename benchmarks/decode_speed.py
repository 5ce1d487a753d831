"""Decode time of refcodec against CompressAI's float decoder of the same architecture, in one run.

    python benchmarks/decode_speed.py

For every shipped refcodec model (or each --model), on one image (default
<repo>/../shared/data/kodak/kodim01.png, 768x512):

- refcodec: ``refcodec.encoder.encode.encode(image, model)`` once, then ``refcodec.decode(stream,
  impl="fast")`` (--impl) timed: one untimed warm-up call first (it loads the Numba
  kernels: JIT compilation or the on-disk cache is excluded from the times), then the
  median of --repeat (default 3) calls. A call is the whole public decode: stream parsing,
  model lookup by identity (reads and hashes the shipped model files), rANS, layers.
- CompressAI 1.2.8, the model of the same architecture with the same N and M
  (factorized -> FactorizedPrior, hyperprior -> ScaleHyperprior, mean-scale ->
  MeanScaleHyperprior, joint -> JointAutoregressiveHierarchicalPriors), random weights
  (seed 0: the layers' work does not depend on them, the entropy decoding's somewhat
  does), eval mode, ``update(force=True)``, ``torch.no_grad()``, float32 on the CPU. Its
  own ``compress`` of the same image once, then ``decompress(strings, shape)`` timed the
  same way (warm-up, median of --repeat).
- Both decoders are timed at every thread count of --threads (default "2,1": torch,
  Numba and OpenBLAS all set to that count). With 2 threads on a busy 2-core machine,
  CompressAI's autoregressive decoder (thousands of tiny convolutions) can be many times
  slower than with 1, so each decoder is judged at its fastest count.
- ratio = CompressAI seconds / refcodec seconds, each at its fastest thread count (> 1:
  refcodec is faster). Targets, at CompressAI's zoo sizes (models imported from CompressAI
  checkpoints of those sizes, ``refcodec import compressai``, given with --model): the joint
  model decodes at least 20x faster than CompressAI's mbt2018 and the hyperprior models
  (hyperprior, mean-scale) at least 2x faster than CompressAI's float ones.
- The refcodec decoder's multiply-accumulates, counted from the model's layer shapes
  for this image size: transposed 5x5 stride-2 convolutions Cin*Cout*25*H_in*W_in, IGDN
  C*C*H*W, convolutions Cin*Cout*K*K*H*W (the masked 5x5 context convolution of the joint
  model: 12 of 25 taps), over the synthesis, the hyper-synthesis and, for joint, the
  context and entropy-parameter layers. GMAC/s = MACs / refcodec seconds (at its fastest
  thread count), reported as a fraction of two measured peaks at the first --threads
  count: the best of 5 float64 matrix products (n = 3072) with NumPy's BLAS (the fast
  path's sums without AVX512-VNNI), and, where the CPU has AVX512-VNNI, the best of 5
  runs of refcodec's own integer convolution (refcodec.fast.vnni: AMX-INT8 tiles where the CPU
  has them, else AVX512-VNNI; the kernel is named in the report) on a 3x3 layer of
  128 -> 128 channels at 128x128 (2.4 GMAC; packing and requantisation included). The
  theoretical float64 FMA peak (cores x clock x FMA lanes per cycle, clock from
  /proc/cpuinfo) and, where NumPy's OpenBLAS runs an AVX2 kernel on an AVX-512 machine,
  the DGEMM rate with its AVX-512 kernel (OPENBLAS_CORETYPE=SkylakeX, in a subprocess)
  are reported for context.
- Each decoder is timed in a fresh process of its own (this script with --time-one), one
  after the other: in a shared process the thread pool one library leaves spinning (torch's
  OpenMP, OpenBLAS) slowed the other by up to 30 %.

Threads are set with torch.set_num_threads, numba.set_num_threads and OpenBLAS's C API
(where NumPy bundles scipy-openblas), and reported. Repeated runs on a shared machine vary by 10-25% or more: compare
numbers of one run only.

Needs CompressAI, which is not a dependency of refcodec:

    pip install --no-deps compressai==1.2.8 scipy==1.17.1

(``--no-deps`` keeps pip from replacing the CPU build of torch or NumPy 2.) ``import
compressai`` pulls in its datasets and point-cloud modules and through them torchvision,
torch_geometric, requests, einops, pytorch_msssim, none of which the image models use
(and torchvision's PyPI wheel cannot load against the CPU build of torch); when that
import fails, this script loads compressai.models.google under bare parent packages
instead (see ``import_compressai_google``), which needs only scipy. --skip-compressai
times refcodec alone.

Results: a markdown table, and benchmarks/decode_speed.json (--json) with every time,
the versions, thread counts and the CPU. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

try:
    import refcodec
except ImportError:
    sys.path.insert(0, str(REPO))
import refcodec
import refcodec.decoder.model
import refcodec.encoder.encode
import refcodec.fast.layers
import refcodec.fast.vnni
import refcodec.image

DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "kodak" / "kodim01.png"
DEFAULT_JSON = REPO / "benchmarks" / "decode_speed.json"
DGEMM_N = 3072
# refcodec architecture -> (CompressAI class in compressai.models.google, CompressAI zoo name)
COMPRESSAI_MODELS = {"factorized": ("FactorizedPrior", "bmshj2018-factorized"),
                     "hyperprior": ("ScaleHyperprior", "bmshj2018-hyperprior"),
                     "mean-scale": ("MeanScaleHyperprior", "mbt2018-mean"),
                     "joint": ("JointAutoregressiveHierarchicalPriors", "mbt2018")}
TARGETS = {"joint": 20.0, "hyperprior": 2.0, "mean-scale": 2.0}  # minimum ratio CompressAI / refcodec (issue 12)


# ---------------------------------------------------------------------------
# Timing


def median_time(fn, repeat: int) -> tuple:
    """(median seconds, all seconds) of ``repeat`` calls of fn after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), times


def time_refcodec(model, pixels: np.ndarray, impl: str, repeat: int, model_files: list) -> dict:
    """Encode once, then time ``refcodec.decode(stream, model_files, impl=impl)``."""
    stream = refcodec.encoder.encode.encode(pixels, model=model)
    decoded = refcodec.decode(stream, model_files, impl=impl)
    if decoded.shape != pixels.shape or decoded.dtype != np.uint8:
        raise RuntimeError(f"refcodec decoded {decoded.dtype} {decoded.shape}, expected uint8 {pixels.shape}")
    seconds, times = median_time(lambda: refcodec.decode(stream, model_files, impl=impl), repeat)
    return {"seconds": seconds, "times": times, "stream_bytes": len(stream)}


def time_compressai(google, architecture: str, n: int, m: int, pixels: np.ndarray, repeat: int) -> dict:
    """CompressAI's model of ``architecture`` (random weights): compress once, then time decompress."""
    import torch

    cls_name, zoo_name = COMPRESSAI_MODELS[architecture]
    torch.manual_seed(0)
    net = getattr(google, cls_name)(n, m).eval()
    net.update(force=True)
    x = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float().div(255.0)[None]
    with torch.no_grad():
        enc = net.compress(x)
        out = net.decompress(enc["strings"], enc["shape"])["x_hat"]
        if tuple(out.shape) != (1, 3) + pixels.shape[:2]:
            raise RuntimeError(f"CompressAI {cls_name} decompressed to {tuple(out.shape)}")
        seconds, times = median_time(lambda: net.decompress(enc["strings"], enc["shape"]), repeat)
    n_bytes = sum(len(s) for strings in enc["strings"] for s in strings)
    return {"class": cls_name, "zoo_name": zoo_name, "seconds": seconds, "times": times, "stream_bytes": n_bytes}


# ---------------------------------------------------------------------------
# CompressAI without its package __init__


def _bare_package(name: str, path: Path, **attributes) -> types.ModuleType:
    """Register an empty package ``name`` whose submodules are found in ``path``."""
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


def import_compressai_google() -> tuple:
    """(compressai.models.google, how it was imported).

    First a plain import. If that fails for a missing optional dependency, the modules the
    image models need are loaded under bare ``compressai``, ``compressai.registry`` and
    ``compressai.models`` packages whose ``__init__`` files are skipped (they import the
    datasets, point-cloud models and transform registry). The bare ``compressai`` provides
    what ``compressai.entropy_models`` asks of the real one: the "ans" entropy coder.
    """
    try:
        return importlib.import_module("compressai.models.google"), "import compressai"
    except ImportError as e:
        reason = f"import compressai failed: {e}"
    for name in [k for k in sys.modules if k == "compressai" or k.startswith("compressai.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("compressai")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("CompressAI is not installed: pip install --no-deps compressai==1.2.8 scipy==1.17.1 "
                         "(or --skip-compressai)")
    root = Path(spec.submodule_search_locations[0])
    _bare_package("compressai", root, get_entropy_coder=lambda: "ans", available_entropy_coders=lambda: ["ans"])
    registry = _bare_package("compressai.registry", root / "registry")
    registry.__dict__.update({k: v for k, v in vars(importlib.import_module("compressai.registry.torch")).items()
                              if not k.startswith("_")})
    _bare_package("compressai.models", root / "models")
    try:
        google = importlib.import_module("compressai.models.google")
    except ImportError as e:
        raise SystemExit(f"cannot load compressai.models.google ({e}); pip install --no-deps scipy==1.17.1") from None
    return google, f"bare packages, compressai/__init__.py skipped ({reason})"


# ---------------------------------------------------------------------------
# Multiply-accumulates of the refcodec decoder


def fallback_plan(architecture: str, n: int, m: int) -> dict:
    """group -> [(kind, Cin, Cout, K)] of the entropy-model layers, computed from N and M."""
    plan = {}
    if architecture == "hyperprior":
        plan["hyper_synthesis"] = [("deconv", n, n, 5), ("deconv", n, n, 5), ("conv", n, m, 3)]
    elif architecture in ("mean-scale", "joint"):
        plan["hyper_synthesis"] = [("deconv", n, m, 5), ("deconv", m, 3 * m // 2, 5), ("conv", 3 * m // 2, 2 * m, 3)]
    if architecture == "joint":
        plan["context"] = [("conv", m, 2 * m, 5)]
        plan["entropy_parameters"] = [("conv", 4 * m, 10 * m // 3, 1), ("conv", 10 * m // 3, 8 * m // 3, 1),
                                      ("conv", 8 * m // 3, 2 * m, 1)]
    return plan


def layer_shape(layer) -> tuple:
    """(kind, Cin, Cout, K) of a refcodec layer from its tensors' shapes."""
    if layer.kind == "igdn":
        c = layer.gamma.shape[0]
        return ("igdn", c, c, 0)
    w = layer.weight.shape
    cin, cout = (w[0], w[1]) if layer.kind == "deconv" else (w[1], w[0])
    return (layer.kind, cin, cout, w[2])


def layer_groups(model) -> tuple:
    """(group -> [(kind, Cin, Cout, K)], source): from the model's layer lists, else from N and M."""
    groups = {"synthesis": [layer_shape(layer) for layer in model.synthesis]}
    computed = fallback_plan(model.architecture, model.n, model.m)
    source = "model layers"
    for group, plan in computed.items():
        layers = getattr(model, group, None)
        if layers:
            groups[group] = [layer_shape(layer) for layer in layers]
        else:
            groups[group], source = plan, "synthesis from model layers, entropy model computed from N, M"
    return groups, source


def group_macs(layers: list, height: int, width: int, masked: bool = False) -> int:
    """MACs of a chain of layers on an input of height x width (deconvs double it; convs keep it)."""
    total, h, w = 0, height, width
    for kind, cin, cout, k in layers:
        if kind == "igdn":
            total += cin * cout * h * w
        elif kind == "deconv":
            total += cin * cout * k * k * h * w
            h, w = 2 * h, 2 * w
        else:
            taps = k * k // 2 if masked else k * k  # mask type A: the taps before the centre
            total += cin * cout * taps * h * w
    return total


def decoder_macs(model, height: int, width: int) -> dict:
    """group -> MACs of the refcodec decoder for a height x width picture, plus "total" and "source"."""
    lat_h, lat_w = math.ceil(height / 16), math.ceil(width / 16)
    inputs = {"synthesis": (lat_h, lat_w), "hyper_synthesis": (math.ceil(lat_h / 4), math.ceil(lat_w / 4)),
              "context": (lat_h, lat_w), "entropy_parameters": (lat_h, lat_w)}
    groups, source = layer_groups(model)
    macs = {g: group_macs(layers, *inputs[g], masked=(g == "context")) for g, layers in groups.items()}
    return {**macs, "total": sum(macs.values()), "source": source}


# ---------------------------------------------------------------------------
# The machine: CPU, BLAS, peak rates


def cpu_info() -> dict:
    """Model name, vendor, family, clock, core count and FMA-relevant flags from /proc/cpuinfo."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # first processor only
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    return {"model_name": fields.get("model name", platform.processor()), "vendor": fields.get("vendor_id"),
            "family": int(fields["cpu family"]) if "cpu family" in fields else None,
            "model": int(fields["model"]) if "model" in fields else None,
            "mhz": float(fields["cpu MHz"]) if "cpu MHz" in fields else None, "cores": os.cpu_count(),
            "avx512f": "avx512f" in flags, "avx2": "avx2" in flags, "fma": "fma" in flags}


def fma_lanes_per_cycle(cpu: dict) -> tuple:
    """(float64 FMAs per cycle per core, the assumption behind it)."""
    if cpu["avx512f"]:
        if cpu["vendor"] == "AuthenticAMD" and cpu["family"] == 25:
            return 8, "Zen 4: AVX-512 on 256-bit FMA units, 2 pipes x 4 lanes"
        if cpu["vendor"] == "AuthenticAMD" and cpu["family"] == 26:
            return 16, "Zen 5: 2 FMA pipes x 8 float64 lanes (512-bit datapath)"
        return 16, "AVX-512 with 2 FMA units x 8 float64 lanes (some Intel parts have 1)"
    if cpu["avx2"] and cpu["fma"]:
        return 8, "AVX2: 2 FMA units x 4 float64 lanes"
    return 2, "no FMA vector units assumed"


def theoretical_peak(cpu: dict) -> dict:
    """Cores x clock x float64 FMA lanes per cycle, in MAC/s, with the assumption behind it."""
    lanes, assumption = fma_lanes_per_cycle(cpu)
    if not cpu["mhz"]:
        return {"mac_per_s": None, "assumption": "clock unknown"}
    return {"mac_per_s": cpu["cores"] * cpu["mhz"] * 1e6 * lanes, "fma_per_cycle_per_core": lanes,
            "clock_mhz": cpu["mhz"], "cores": cpu["cores"],
            "assumption": f"{assumption}; clock = 'cpu MHz' of /proc/cpuinfo (nominal under a hypervisor)"}


def _openblas():
    """NumPy's bundled scipy-openblas library (ctypes), or None."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libscipy_openblas*"))
    return ctypes.CDLL(libs[0]) if libs else None


def _openblas_symbol(lib, name: str):
    """The OpenBLAS C function ``name`` (e.g. "get_num_threads") under its scipy-openblas or plain name."""
    for symbol in (f"scipy_openblas_{name}64_", f"scipy_openblas_{name}", f"openblas_{name}"):
        if lib is not None and hasattr(lib, symbol):
            return getattr(lib, symbol)
    return None


def blas_info() -> dict:
    """NumPy's BLAS: name and version from numpy's build config; OpenBLAS core type and threads."""
    config = getattr(np, "__config__", None)
    blas = getattr(config, "CONFIG", {}).get("Build Dependencies", {}).get("blas", {}) if config else {}
    info = {"name": blas.get("name"), "version": blas.get("version"), "corename": None, "threads": None,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    lib = _openblas()
    corename, threads = _openblas_symbol(lib, "get_corename"), _openblas_symbol(lib, "get_num_threads")
    if corename is not None:
        corename.restype = ctypes.c_char_p
        info["corename"] = corename().decode()
    if threads is not None:
        info["threads"] = threads()
    return info


def set_threads(n: int) -> dict:
    """Set torch, Numba and OpenBLAS (where reachable) to n threads; return the counts in force."""
    import numba

    counts = {"numba": None, "torch": None}
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    counts["numba"] = numba.get_num_threads()
    setter = _openblas_symbol(_openblas(), "set_num_threads")
    if setter is not None:
        setter(n)
    try:
        import torch

        torch.set_num_threads(n)
        counts["torch"] = torch.get_num_threads()
    except ImportError:
        pass
    counts["blas"] = blas_info()["threads"]
    return counts


def dgemm_rate(n: int = DGEMM_N, repeat: int = 5) -> float:
    """Best MAC/s (n^3 per product) of a float64 n x n matrix product with NumPy's BLAS."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)), rng.random((n, n))
    a @ b
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return n**3 / best


def vnni_rate(repeat: int = 5) -> float:
    """Best MAC/s of refcodec's integer convolution (AMX or AVX512-VNNI) on a 3x3, 128 -> 128 layer at 128 x 128."""
    rng = np.random.default_rng(0)
    c, size = 128, 128
    layer = refcodec.decoder.layers.Layer("conv", np.full(c, 20, np.uint8), "none",
                                          rng.integers(-2**15, 2**15, (c, c, 3, 3)).astype(np.int16),
                                          np.zeros(c, np.int64))
    x = rng.integers(-2**15, 2**15, (c, size, size)).astype(np.int16)
    refcodec.fast.layers.convolution(x, layer)
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        refcodec.fast.layers.convolution(x, layer)
        best = min(best, time.perf_counter() - t)
    return c * c * 9 * size * size / best


def dgemm_rate_with_coretype(coretype: str, threads: int) -> dict:
    """DGEMM MAC/s in a subprocess whose OpenBLAS is forced to ``coretype``."""
    env = dict(os.environ, OPENBLAS_CORETYPE=coretype, OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, __file__, "--dgemm-only"], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def peak_rates(cpu: dict, threads: int) -> dict:
    """Measured DGEMM rate, theoretical peak, and the DGEMM rate with an AVX-512 kernel where it differs."""
    blas = blas_info()
    peaks = {"dgemm": {"n": DGEMM_N, "mac_per_s": dgemm_rate(), "blas": blas}, "theoretical": theoretical_peak(cpu)}
    if refcodec.fast.vnni.AVAILABLE:
        kernel = "AMX-INT8" if refcodec.fast.layers.MATRIX_SIMD else "AVX512-VNNI"
        peaks["vnni"] = {"layer": "conv 3x3, 128 -> 128 channels, 128x128", "kernel": kernel, "mac_per_s": vnni_rate()}
    avx512_kernels = ("SkylakeX", "Cooperlake", "SapphireRapids", "Zen4", "Zen5")  # OpenBLAS core names
    if cpu["avx512f"] and blas["corename"] and blas["corename"] not in avx512_kernels:
        peaks["dgemm_avx512_kernel"] = dgemm_rate_with_coretype("SkylakeX", threads)
    return peaks


# ---------------------------------------------------------------------------
# Report


def versions() -> dict:
    """Versions of Python and of every library on the timed paths."""
    out = {"python": platform.python_version(), "numpy": np.__version__, "refcodec": refcodec.__version__}
    for dist in ("numba", "torch", "compressai", "scipy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def time_at_threads(args, models: dict, pixels: np.ndarray, google, n_threads: int) -> dict:
    """model key -> {"threads", "refcodec", "compressai"} timed with every library at n_threads.

    Each decoder is timed in a process of its own (``--time-one``): in one process, the thread
    pool one library leaves spinning after its calls (torch's OpenMP, OpenBLAS) takes a core
    from the other's next calls."""
    runs = {}
    for key, model_arg in models.items():
        run = time_one(args, "refcodec", model_arg, n_threads)
        print(f"{key}, {n_threads} thread(s): refcodec {run['refcodec']['seconds']:.3f} s", flush=True)
        if google is not None:
            run["compressai"] = time_one(args, "compressai", model_arg, n_threads)["compressai"]
            print(f"{key}, {n_threads} thread(s): CompressAI {run['compressai']['class']} "
                  f"{run['compressai']['seconds']:.3f} s", flush=True)
        runs[key] = run
    return runs


def time_one(args, decoder: str, model_arg: str, n_threads: int) -> dict:
    """{"threads", decoder: times} from a subprocess running this script with --time-one."""
    cmd = [sys.executable, __file__, "--time-one", decoder, "--model", model_arg, "--threads", str(n_threads),
           "--image", str(args.image), "--impl", args.impl, "--repeat", str(args.repeat)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def time_one_here(args) -> dict:
    """The --time-one process: one decoder, one model, one thread count."""
    counts = set_threads(args.threads[0])
    model = refcodec.encoder.encode.resolve_model(args.model[0])
    arg = args.model[0]
    files = [arg] if "/" in arg or arg.endswith(".safetensors") else []  # a model file, or a shipped model's name
    pixels = refcodec.image.to_rgb_array(args.image)
    if args.time_one == "refcodec":
        return {"threads": counts, "refcodec": time_refcodec(model, pixels, args.impl, args.repeat, files)}
    google, how = import_compressai_google()
    if google is None:
        raise RuntimeError(f"CompressAI: {how}")
    return {"threads": counts, "compressai": time_compressai(google, model.architecture, model.n, model.m, pixels,
                                                             args.repeat)}


def fastest(runs: dict, decoder: str) -> dict:
    """The decoder's result at its fastest thread count, with that count as "threads"."""
    n, run = min(runs.items(), key=lambda item: item[1][decoder]["seconds"])
    return {**run[decoder], "threads": int(n)}


def summarise(model, runs: dict, height: int, width: int) -> dict:
    """Each decoder at its fastest thread count, the ratio, the target, the MACs and rate."""
    row = {"architecture": model.architecture, "n": model.n, "m": model.m, "model_id": model.model_id.hex(),
           "macs": decoder_macs(model, height, width), "runs": runs, "refcodec": fastest(runs, "refcodec")}
    row["refcodec"]["mac_per_s"] = row["macs"]["total"] / row["refcodec"]["seconds"]
    if all("compressai" in r for r in runs.values()):
        row["compressai"] = fastest(runs, "compressai")
        row["ratio"] = row["compressai"]["seconds"] / row["refcodec"]["seconds"]
        row["target_ratio"] = TARGETS.get(model.architecture)
        row["target_met"] = None if row["target_ratio"] is None else row["ratio"] >= row["target_ratio"]
    return row


def evaluate(args, pixels: np.ndarray, google) -> dict:
    """Per model: both decoders timed at every --threads count, summarised at their fastest."""
    models, args_of = {}, {}
    for arg in args.model:
        model = refcodec.encoder.encode.resolve_model(arg)
        key = model.name or Path(arg).stem
        models[key], args_of[key] = model, arg
    by_threads = {n: time_at_threads(args, args_of, pixels, google, n) for n in args.threads}
    return {key: summarise(model, {str(n): by_threads[n][key] for n in args.threads}, *pixels.shape[:2])
            for key, model in models.items()}


def percent(x, peak) -> str:
    """x as a percentage of peak, or "-" without a peak."""
    return f"{100 * x / peak:.0f}%" if peak else "-"


def seconds_by_threads(row: dict, decoder: str) -> str:
    """The decoder's median seconds at each thread count, the fastest in bold."""
    best = row[decoder]["threads"]
    cells = [f"{r[decoder]['seconds']:.3f}" for r in row["runs"].values()]
    bold = [int(n) == best and len(cells) > 1 for n in row["runs"]]
    return " / ".join(f"**{c}**" if b else c for b, c in zip(bold, cells, strict=True))


def row_line(key: str, r: dict, dgemm: float, vnni: float | None) -> str:
    """One model's row of the markdown table."""
    ca, rate = r.get("compressai"), r["refcodec"]["mac_per_s"]
    cells = [f"{key} ({r['architecture']})", f"{r['n']}, {r['m']}", seconds_by_threads(r, "refcodec")]
    if ca:
        target = "-" if r["target_ratio"] is None else (
            f">= {r['target_ratio']:g}x: {'met' if r['target_met'] else 'NOT met'}")
        cells += [f"{ca['zoo_name']} ({ca['class']})", seconds_by_threads(r, "compressai"), f"{r['ratio']:.2f}x",
                  target]
    else:
        cells += ["-"] * 4
    cells += [f"{r['macs']['total'] / 1e9:.2f}", f"{rate / 1e9:.1f}", percent(rate, dgemm), percent(rate, vnni)]
    return "| " + " | ".join(cells) + " |"


def table(results: dict) -> str:
    """The markdown table and the peak rates it is measured against."""
    peaks, cpu = results["peaks"], results["cpu"]
    dgemm, theo = peaks["dgemm"]["mac_per_s"], peaks["theoretical"]["mac_per_s"]
    h, w = results["image"]["height"], results["image"]["width"]
    threads = " / ".join(str(n) for n in results["threads"])
    lines = [f"Decode time, {results['image']['name']} ({w}x{h}), CPU {cpu['model_name']} ({cpu['cores']} cores): "
             f"median of {results['repeat']} after one warm-up (Numba JIT / cache load excluded), at {threads} "
             f"thread(s) (torch, Numba and BLAS alike; fastest in bold). Ratio and rate: each decoder at its "
             f"fastest thread count.", "",
             f"| model | N, M | refcodec --impl {results['impl']} (s) | CompressAI model | CompressAI decompress (s) "
             "| ratio CompressAI/refcodec | target | decoder GMAC | refcodec GMAC/s | of DGEMM peak | "
             "of integer kernel peak |",
             "|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|"]
    vnni = peaks.get("vnni", {}).get("mac_per_s")
    lines += [row_line(key, r, dgemm, vnni) for key, r in results["models"].items()]
    blas = peaks["dgemm"]["blas"]
    lines += ["", f"DGEMM peak (NumPy {blas['name']} {blas['version']}, kernel {blas['corename']}, "
                  f"{blas['threads']} threads, n={DGEMM_N}, best of 5): {dgemm / 1e9:.1f} GMAC/s"]
    if "dgemm_avx512_kernel" in peaks:
        lines.append(f"DGEMM with OpenBLAS's AVX-512 kernel (OPENBLAS_CORETYPE=SkylakeX, subprocess): "
                     f"{peaks['dgemm_avx512_kernel']['mac_per_s'] / 1e9:.1f} GMAC/s")
    if vnni:
        lines.append(f"Integer kernel peak (refcodec.fast.vnni, {peaks['vnni'].get('kernel', 'AVX512-VNNI')}, "
                     f"{peaks['vnni']['layer']}, best of 5): "
                     f"{vnni / 1e9:.1f} GMAC/s")
    if theo:
        lines.append(f"Theoretical float64 FMA peak: {theo / 1e9:.1f} GMAC/s ({peaks['theoretical']['assumption']})")
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--model", action="append", default=None,
                    help="shipped refcodec model name or model file (repeatable; default: every shipped model)")
    ap.add_argument("--impl", default="fast", help="refcodec decoder implementation (fast or reference)")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per decoder (median reported)")
    ap.add_argument("--threads", default="2,1",
                    help="comma-separated thread counts to time at (default 2,1); the first is the peak's")
    ap.add_argument("--skip-compressai", action="store_true", help="time refcodec only")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--dgemm-only", action="store_true", help=argparse.SUPPRESS)  # the peak_rates subprocess
    ap.add_argument("--time-one", choices=["refcodec", "compressai"], help=argparse.SUPPRESS)  # time_one
    args = ap.parse_args(argv)
    args.model = args.model or list(refcodec.decoder.model.shipped_model_paths())
    args.threads = [int(n) for n in args.threads.split(",") if n]
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.dgemm_only:
        result = {"mac_per_s": dgemm_rate(), "blas": blas_info()}
        print(json.dumps(result))
        return result
    if args.time_one:
        result = time_one_here(args)
        print(json.dumps(result))
        return result
    google, how = (None, "skipped") if args.skip_compressai else import_compressai_google()
    pixels = refcodec.image.to_rgb_array(args.image)
    cpu = cpu_info()
    results = {"image": {"name": args.image.name, "path": str(args.image), "height": pixels.shape[0],
                         "width": pixels.shape[1]},
               "impl": args.impl, "repeat": args.repeat, "threads": args.threads, "compressai_import": how,
               "versions": versions(), "cpu": cpu, "machine": platform.machine(),
               "models": evaluate(args, pixels, google)}
    set_threads(args.threads[0])
    results["peaks"] = peak_rates(cpu, args.threads[0])
    print()
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()
