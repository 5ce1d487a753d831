"""Sums of products of the convolutions and IGDN (spec §5.2, §5.4, §5.7) in 16-bit integer SIMD: AVX512-VNNI.

On a CPU with AVX512-VNNI, the fast path's convolutions, transposed
convolutions and IGDN norms run their sums of products on ``vpdpwssd``: in each
of 16 32-bit lanes, acc += a0*b0 + a1*b1 for 16-bit a and b. Two of them make
16 exact 16-bit x 16-bit multiply-adds (the weight in two bytes, below), four
times what a 256-bit float64 FMA does. A small kernel written in LLVM IR
(``_kernel_ir``) is compiled for the host by llvmlite (Numba's own compiler)
and driven by Numba loops over output rows and channels (refcodec.fast.layers).
Without AVX512-VNNI, or with NUMBA_DISABLE_JIT, ``AVAILABLE`` is False and
refcodec.fast.layers uses float64 BLAS; both give the spec's integers.
``STATUS`` says which case holds. A kernel that fails to build on a CPU that
has AVX512-VNNI is a bug, not a fallback: ``STATUS`` then names the error
(tests fail on it) and the float64 path serves.

Exactness. Activations are in ACT_MIN..ACT_MAX (spec §5.1), 16 bits; weights
are I16 (spec §6.3). Each weight is split w = 256*hi + lo, lo in 0..255 and hi
in -128..127, both 16-bit. A lane holds the products of one output sample
with input channel pairs (2p, 2p+1) of one tap, in two sums: lo products
(each at most 2^15 * 255 in magnitude) and hi products (at most 2^15 * 128 =
2^22, reached by x = -2^15 and hi = -128). Over ``MAX_PAIRS`` = 127 pairs, 254
products, each sum is at most 254 * 2^22 = 2^31 - 2^23 in magnitude, so the
lanes never wrap (128 pairs of x * hi could reach +2^31: one past the largest
32-bit integer). After each *segment* (one tap's pairs, at most MAX_PAIRS)
the kernel adds (lo + 256*hi) * 2^scale into int64 accumulators: partial sums
of spec §5.2 (below 2^47, spec §6.4), or of the IGDN norm's parts (scale > 0,
refcodec.fast.layers._simd_igdn; below 2^53 in total). Every output sample is
computed by one thread in one fixed order, so thread count cannot matter (and,
the arithmetic being exact, neither could any order).

Layout. An input (C, H, W) is packed as int16 (Hp, ceil(C/2), Wp, 2): channel
pairs interleaved, so 16 consecutive columns of one pair are one 64-byte load,
and the pairs of a row lie together.
Weights are packed per block of ``MR`` output channels as int32 pairs
(segment, pair, r, lo/hi). The kernel computes MR output channels x 16 * NV
columns of one output row: 2 * MR * NV vector accumulators, all in registers.
"""

from __future__ import annotations

import numpy as np
from numba import config, njit, prange, types

MR, NV = 4, 3  # output channels x 16-column vectors per kernel call
COLS = 16 * NV  # output columns per kernel call
MAX_PAIRS = 127  # input-channel pairs per segment: 254 * 2^22 = 2^31 - 2^23
SYMBOL = "refcodec_vnni_block"


def _kernel_ir() -> str:
    """LLVM IR of ``block(x, w, acc, n_seg, seg, pair_stride, acc_stride, scale)``, all i64 (addresses in bytes).

    For s < n_seg: seg[2s] is the byte offset of segment s's tap in the packed input (from x),
    seg[2s+1] its number of pairs (n_seg >= 1 and every count >= 1: the loops test at their end);
    the weights are read sequentially from w, MR int32 pairs (lo, hi) per input pair.
    acc[r][0 .. COLS) += the segment's sums * 2^scale, rows acc_stride bytes apart.
    """
    lines = [
        "declare <16 x i32> @llvm.x86.avx512.vpdpwssd.512(<16 x i32>, <16 x i32>, <16 x i32>)",
        f"define void @{SYMBOL}(i64 %x, i64 %w, i64 %acc, i64 %nseg, i64 %seg, i64 %pstride, i64 %astride, "
        "i64 %scale) {",
        "entry:",
        "  %segp = inttoptr i64 %seg to i64*",
        "  br label %segment",
        "segment:",
        "  %s = phi i64 [0, %entry], [%s1, %spill]",
        "  %ws = phi i64 [%w, %entry], [%wnext, %spill]",
        "  %s2 = shl i64 %s, 1",
        "  %offp = getelementptr i64, i64* %segp, i64 %s2",
        "  %off = load i64, i64* %offp",
        "  %s2b = or i64 %s2, 1",
        "  %npp = getelementptr i64, i64* %segp, i64 %s2b",
        "  %np = load i64, i64* %npp",
        "  %xs = add i64 %x, %off",
        "  br label %pair",
        "pair:",
        "  %p = phi i64 [0, %segment], [%p1, %pair]",
        "  %xp = phi i64 [%xs, %segment], [%xp1, %pair]",
        "  %wp = phi i64 [%ws, %segment], [%wp1, %pair]",
    ]
    add = lines.append
    acc = [(h, r, j) for h in "lh" for r in range(MR) for j in range(NV)]
    for h, r, j in acc:
        add(f"  %a{h}{r}{j} = phi <16 x i32> [zeroinitializer, %segment], [%n{h}{r}{j}, %pair]")
    for j in range(NV):  # 16 columns x (channel 2p, 2p+1) of the input
        add(f"  %xa{j} = add i64 %xp, {64 * j}")
        add(f"  %xq{j} = inttoptr i64 %xa{j} to <16 x i32>*")
        add(f"  %xv{j} = load <16 x i32>, <16 x i32>* %xq{j}, align 4")
    for r in range(MR):  # the weight pair of output channel r, broadcast to every lane
        for k, h in enumerate("lh"):
            add(f"  %wa{h}{r} = add i64 %wp, {8 * r + 4 * k}")
            add(f"  %wq{h}{r} = inttoptr i64 %wa{h}{r} to i32*")
            add(f"  %ws{h}{r} = load i32, i32* %wq{h}{r}, align 4")
            add(f"  %wi{h}{r} = insertelement <16 x i32> undef, i32 %ws{h}{r}, i32 0")
            add(f"  %wv{h}{r} = shufflevector <16 x i32> %wi{h}{r}, <16 x i32> undef, <16 x i32> zeroinitializer")
            for j in range(NV):
                add(f"  %n{h}{r}{j} = call <16 x i32> @llvm.x86.avx512.vpdpwssd.512("
                    f"<16 x i32> %a{h}{r}{j}, <16 x i32> %xv{j}, <16 x i32> %wv{h}{r})")
    lines += [
        "  %p1 = add i64 %p, 1",
        "  %xp1 = add i64 %xp, %pstride",
        f"  %wp1 = add i64 %wp, {8 * MR}",
        "  %more = icmp slt i64 %p1, %np",
        "  br i1 %more, label %pair, label %spill",
        "spill:",  # acc[r][16j .. 16j+16) += (lo + 256 * hi) << scale, as int64
        "  %wnext = phi i64 [%wp1, %pair]",
        "  %sc0 = insertelement <8 x i64> undef, i64 %scale, i32 0",
        "  %sc = shufflevector <8 x i64> %sc0, <8 x i64> undef, <8 x i32> zeroinitializer",
    ]
    shl8 = "<" + ", ".join(["i64 8"] * 8) + ">"
    for r in range(MR):
        add(f"  %rowoff{r} = mul i64 %astride, {r}")
        add(f"  %row{r} = add i64 %acc, %rowoff{r}")
        for j in range(NV):
            for half in range(2):
                t = f"{r}{j}{half}"
                lanes = ", ".join(f"i32 {8 * half + i}" for i in range(8))
                for h in "lh":
                    add(f"  %q{h}{t} = shufflevector <16 x i32> %n{h}{r}{j}, <16 x i32> undef, <8 x i32> <{lanes}>")
                    add(f"  %e{h}{t} = sext <8 x i32> %q{h}{t} to <8 x i64>")
                add(f"  %hs{t} = shl <8 x i64> %eh{t}, {shl8}")
                add(f"  %oa{t} = add i64 %row{r}, {8 * (16 * j + 8 * half)}")
                add(f"  %oq{t} = inttoptr i64 %oa{t} to <8 x i64>*")
                add(f"  %ov{t} = load <8 x i64>, <8 x i64>* %oq{t}, align 8")
                add(f"  %sum{t} = add <8 x i64> %el{t}, %hs{t}")
                add(f"  %ss{t} = shl <8 x i64> %sum{t}, %sc")
                add(f"  %o2{t} = add <8 x i64> %ov{t}, %ss{t}")
                add(f"  store <8 x i64> %o2{t}, <8 x i64>* %oq{t}, align 8")
    lines += [
        "  %s1 = add i64 %s, 1",
        "  %again = icmp slt i64 %s1, %nseg",
        "  br i1 %again, label %segment, label %done",
        "done:",
        "  ret void",
        "}",
    ]
    return "\n".join(lines)


BUILT = "built"
NO_VNNI = "no AVX512-VNNI on this CPU"
NO_JIT = "NUMBA_DISABLE_JIT is set"


def _compile() -> tuple:
    """Build the kernel for the host CPU and make it callable from Numba as SYMBOL: (engine or None, status)."""
    import llvmlite.binding as llvm

    if config.DISABLE_JIT:  # the kernel is called from compiled Numba code only
        return None, NO_JIT
    features = llvm.get_host_cpu_features()
    if not (features.get("avx512vnni") and features.get("avx512bw")):
        return None, NO_VNNI
    try:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=features.flatten(), opt=3)
        module = llvm.parse_assembly(_kernel_ir())
        module.verify()
        engine = llvm.create_mcjit_compiler(module, machine)
        engine.finalize_object()
        llvm.add_symbol(SYMBOL, engine.get_function_address(SYMBOL))
        return engine, BUILT
    except Exception as e:
        return None, f"the AVX512-VNNI kernel failed to build: {type(e).__name__}: {e}"


_ENGINE, STATUS = _compile()  # the engine is kept alive: it owns the kernel's code
AVAILABLE = STATUS == BUILT
block = types.ExternalFunction(SYMBOL, types.void(*[types.int64] * 8))


@njit(cache=True, nogil=True, parallel=True)
def pack(x, top, left, hp, wp):
    """x (C, H, W) at rows top.., columns left.. of a zero int16 array (hp, ceil(C/2), wp, 2)."""
    c, h, w = x.shape
    out = np.zeros((hp, (c + 1) // 2, wp * 2), np.int16)
    for i in prange(h * out.shape[1]):
        y, p = i // out.shape[1], i % out.shape[1]
        dst, even, odd = out[top + y, p], x[2 * p, y], x[min(2 * p + 1, c - 1), y]
        k = 1 if 2 * p + 1 < c else 0
        for col in range(w):
            dst[2 * (left + col)] = np.int16(even[col])
            dst[2 * (left + col) + 1] = np.int16(odd[col]) * k
    return out.reshape(hp, out.shape[1], wp, 2)


@njit(cache=True, nogil=True, parallel=True)
def pack_squares(x, wp):
    """x (C, H, W) -> the packed (H, ceil(C/2), wp, 2) int16 B and A of x^2 = A * 2^16 + B.

    B = x^2 - A * 2^16 is in -2^15 .. 2^15 - 1 and A = (x^2 + 2^15) >> 16 in 0 .. 2^14, as
    |x| <= 2^15: the IGDN norm's squares (spec §5.4) in two 16-bit halves (int32 arithmetic:
    x^2 + 2^15 <= 2^30 + 2^15)."""
    c, h, w = x.shape
    low = np.zeros((h, (c + 1) // 2, wp * 2), np.int16)
    high = np.zeros((h, (c + 1) // 2, wp * 2), np.int16)
    for i in prange(h * low.shape[1]):
        y, p = i // low.shape[1], i % low.shape[1]
        even, odd = x[2 * p, y], x[min(2 * p + 1, c - 1), y]
        k = np.int32(1 if 2 * p + 1 < c else 0)
        lo, hi = low[y, p], high[y, p]
        for col in range(w):
            v0, v1 = np.int32(even[col]), np.int32(odd[col]) * k
            a0, a1 = (v0 * v0 + np.int32(1 << 15)) >> 16, (v1 * v1 + np.int32(1 << 15)) >> 16
            lo[2 * col], lo[2 * col + 1] = v0 * v0 - (a0 << 16), v1 * v1 - (a1 << 16)
            hi[2 * col], hi[2 * col + 1] = a0, a1
    return low.reshape(h, low.shape[1], wp, 2), high.reshape(h, low.shape[1], wp, 2)


def pack_weights(mats: list) -> tuple:
    """Per-tap (Cout, Cin) weight matrices -> (int32 (ceil(Cout/MR), n_pairs_total, MR, 2), pairs per tap).

    The last axis holds (lo, hi) of w = 256*hi + lo, each an int32 of two int16 (channels 2p, 2p+1)."""
    w = np.stack(mats).astype(np.int64)  # (T, Cout, Cin)
    taps, cout, cin = w.shape
    w = np.pad(w, ((0, 0), (0, -cout % MR), (0, cin % 2)))
    halves = np.stack([w & 255, w >> 8], axis=-1).astype(np.int16)  # (T, Cout', Cin', 2)
    pairs = halves.reshape(taps, w.shape[1], w.shape[2] // 2, 2, 2).transpose(0, 1, 2, 4, 3)
    words = np.ascontiguousarray(pairs).view(np.int32)[..., 0]  # (T, Cout', P, 2): int32 (lo, hi)
    blocks = words.reshape(taps, w.shape[1] // MR, MR, w.shape[2] // 2, 2).transpose(1, 0, 3, 2, 4)
    return np.ascontiguousarray(blocks.reshape(w.shape[1] // MR, -1, MR, 2)), w.shape[2] // 2


def padded_width(w: int) -> int:
    """w rounded up to whole kernel blocks of COLS columns."""
    return -(-w // COLS) * COLS


def segments(offsets: list, pairs: int, wp: int) -> np.ndarray:
    """The kernel's (byte offset, pairs) per segment: each tap (dy, dx) split into runs of MAX_PAIRS pairs."""
    return np.array([v for dy, dx in offsets for p0 in range(0, pairs, MAX_PAIRS)
                     for v in (((dy * pairs + p0) * wp + dx) * 4, min(MAX_PAIRS, pairs - p0))], np.int64)
