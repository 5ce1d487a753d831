"""Sums of products of the convolutions and IGDN (spec §5.2, §5.4, §5.7) in integer SIMD: AVX512-VNNI, AMX-INT8.

On a CPU with AVX512-VNNI, the fast path's convolutions, transposed
convolutions and IGDN norms run their sums of products on ``vpdpwssd``: in each
of 16 32-bit lanes, acc += a0*b0 + a1*b1 for 16-bit a and b. Two of them make
16 exact 16-bit x 16-bit multiply-adds (the weight in two bytes, below), four
times what a 256-bit float64 FMA does. A small kernel written in LLVM IR
(``_kernel_ir``) is compiled for the host by llvmlite (Numba's own compiler)
and driven by Numba loops over output rows and channels (refcodec.fast.layers).
Where the CPU also has AMX-INT8 tiles (and the operating system grants the
process their state), the same sums run on the tile unit instead (below: 16 x
16 x 64 byte products per instruction), with the requantisation (spec §5.6)
or the IGDN output (spec §5.4) in the same kernels. Without AVX512-VNNI, or
with NUMBA_DISABLE_JIT, ``AVAILABLE`` is False and refcodec.fast.layers uses
float64 BLAS; every path gives the spec's integers. ``STATUS`` and
``AMX_STATUS`` say which case holds. A kernel that fails to build on a CPU that
has its instructions is a bug, not a fallback: the status then names the error
(tests fail on it) and the next path serves.

Exactness (VNNI). Activations are in ACT_MIN..ACT_MAX (spec §5.1), 16 bits; weights
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

Layout (VNNI). An input (C, H, W) is packed as int16 (Hp, ceil(C/2), Wp, 2): channel
pairs interleaved, so 16 consecutive columns of one pair are one 64-byte load,
and the pairs of a row lie together.
Weights are packed per block of ``MR`` output channels as int32 pairs
(segment, pair, r, lo/hi). The kernel computes MR output channels x 16 * NV
columns of one output row: 2 * MR * NV vector accumulators, all in registers.

Exactness (AMX). A tile product adds to each int32 of a 16 x 16 tile C the 64
products of a row of A (bytes) and a column of B (bytes), signed or unsigned
as the instruction says, and wraps on overflow. Convolutions: x = 256*xh + xl
and w = 256*wh + wl (xh, wh in -128..127, xl, wl in 0..255), so x*w = 2^16
xh*wh + 2^8 (xh*wl + xl*wh) + xl*wl, three tiles: |xh*wh| <= 2^14, |xh*wl| and
|xl*wh| <= 128 * 255, xl*wl <= 255^2 < 2^16. A sum of at most ``MAX_KSTEPS`` *
64 = 32768 channel-taps (a layer of spec §6.3 has at most 25 taps x 768
channels = 19200; refcodec.fast.layers checks, and a larger layer would use the
VNNI kernel) is therefore at most 2^29, 2 * 32768 * 32640 < 2^31 and 32768 *
65025 < 2^31 in magnitude: no tile wraps. The kernel forms a = (C_hh << 16) +
(C_mid << 8) + C_ll + bias in int64 lanes, the exact sum of spec §5.2 (below
2^47), and requantises it as spec §5.6 does (Round2 = (a + 2^(s-1)) >> s, the
negative side of a leaky layer as (a * slope + 2^(s+15)) >> (s + 16), |a *
slope| < 2^62). IGDN: x^2 < 2^31 in four unsigned bytes, gamma < 2^23 (spec
§6.4) in three; the 12 byte products (each < 2^16) go to tile i + j, at most 3
per channel, so a tile sums at most 3 * 512 * 65025 < 2^31 (N <= MAX_CHANNELS =
512, spec §6.2); T = beta + sum_s C_s * 2^(8s) in int64 is the exact norm (below
2^53), and the output is the
float64 computation of refcodec.fast.layers._igdn_value, exact as argued
there, lane by lane (no fused multiply-add: the kernel's IR allows none).

Layout (AMX). An input is packed as bytes (2, Hp, Cq, Wp, 4) (high and low
bytes, ``pack_quads``): quads of channels, 16 consecutive positions of a quad one
64-byte row of a B tile, the quads of a tap 16 such rows (64 channels) Wp * 4
bytes apart; IGDN builds the same tiles of the four bytes of x^2 in its kernel,
16 positions at a time. Weights (and gamma) are A tiles: 16 output channels x 64
input channels of a tap, per product. A tile of sums is 16 channels x 16
positions, so each output channel's row of positions is stored directly into
the (C, H, W) output; for a transposed convolution the two column phases of an
output row are computed together and interleaved, and one of at most 4 output
channels (the picture layer) runs its four phases as the 16 outputs of one 3 x 3
correlation.
"""

from __future__ import annotations

import numpy as np
from numba import config, njit, prange, types

MR, NV = 4, 3  # output channels x 16-column vectors per kernel call
COLS = 16 * NV  # output columns per kernel call
MAX_PAIRS = 127  # input-channel pairs per segment: 254 * 2^22 = 2^31 - 2^23
SYMBOL = "refcodec_vnni_block"


V64, V32, V16, VF = "<16 x i64>", "<16 x i32>", "<16 x i16>", "<16 x double>"


class _IR:
    """A little LLVM IR writer: ``v(text)`` appends ``%tN = text`` and returns ``%tN``; ``op(text)`` appends."""

    def __init__(self) -> None:
        self.lines: list = []
        self.n = 0

    def op(self, text: str) -> None:
        self.lines.append(text if text.endswith(":") or text.startswith(("define", "}")) else "  " + text)

    def v(self, text: str) -> str:
        self.n += 1
        self.op(f"%t{self.n} = {text}")
        return f"%t{self.n}"

    def ptr(self, address: str) -> str:
        return self.v(f"inttoptr i64 {address} to ptr")

    def add(self, a: str, b) -> str:
        return self.v(f"add i64 {a}, {b}")

    def tile(self, kind: str, *args) -> None:
        """A tile operation: load (tile, address, stride), store (tile, address), zero (tile), dp (signs, c, a, b)."""
        if kind == "load":
            self.op(f"call void @llvm.x86.tileloadd64(i8 {args[0]}, ptr {self.ptr(args[1])}, i64 {args[2]})")
        elif kind == "store":
            self.op(f"call void @llvm.x86.tilestored64(i8 {args[0]}, ptr {self.ptr(args[1])}, i64 64)")
        elif kind == "zero":
            self.op(f"call void @llvm.x86.tilezero(i8 {args[0]})")
        else:
            self.op(f"call void @llvm.x86.tdpb{args[0]}d(i8 {args[1]}, i8 {args[2]}, i8 {args[3]})")

    def splat(self, ty: str, value: str) -> str:
        """A vector of 16 ``value`` (an i64 or double)."""
        scalar = "double" if ty == VF else "i64"
        first = self.v(f"insertelement {ty} undef, {scalar} {value}, i32 0")
        return self.v(f"shufflevector {ty} {first}, {ty} undef, <16 x i32> zeroinitializer")

    def param(self, ty: str, base: str, row: int, index: str = "%n") -> str:
        """Parameter ``row`` of channel ``index`` (int64 rows of 16 at ``base``), as 16 equal lanes of ``ty``."""
        at = self.add(base, self.v(f"shl i64 {self.add(index, 16 * row)}, 3"))
        value = self.v(f"load i64, ptr {self.ptr(at)}, align 8")
        if ty == VF:
            value = self.v(f"bitcast i64 {value} to double")
        return self.splat(ty, value)

    def select(self, cond: str, ty: str, a: str, b: str) -> str:
        return self.v(f"select <16 x i1> {cond}, {ty} {a}, {ty} {b}")

    def clip(self, ty: str, v: str, lo: str, hi: str) -> str:
        """min(max(v, lo), hi) lane by lane."""
        lt, gt = ("fcmp olt", "fcmp ogt") if ty == VF else ("icmp slt", "icmp sgt")
        v = self.select(self.v(f"{lt} {ty} {v}, {lo}"), ty, lo, v)
        return self.select(self.v(f"{gt} {ty} {v}, {hi}"), ty, hi, v)


def _const(value: int) -> str:
    return "<" + ", ".join([f"i64 {value}"] * 16) + ">"


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


MATVEC = "refcodec_vnni_matvec"
MV_BLOCKS = 4  # blocks of 16 outputs per pass of the matrix-vector kernel
MV_OUT = 16 * MV_BLOCKS  # outputs per pass
MV_PARAMS = ("half_p", "shift_p", "half_n", "shift_n", "mul_n")  # requantisation rows (refcodec.fast.joint)


def _matvec_ir() -> str:
    """LLVM IR of ``matvec(w, v, n_pairs, groups, bias, out, params, raw, lo, hi)``, all i64 (addresses in bytes).

    out[o] = bias[o] + sum_i W[o][i] v[i] for o < 64 * groups: ``v`` holds 2 * n_pairs int16 inputs, ``w`` the
    weights in the layout of :func:`pack_matvec` (per group of MV_OUT outputs, per input pair, per output
    the pair of weights), ``bias`` int64. Each input is split v = 256 * vh + vl (vl in 0..255, vh in
    -128..127, the weights whole: the lanes' bound of the module docstring, with the roles of weight and
    input exchanged), broadcast, and summed in segments of at most MAX_PAIRS pairs before each spill
    into int64 lanes. raw != 0: out is int64 and receives the sums; else out is int16 and receives
    Clip3(lo, hi, (a * m + half) >> s) with (m, half, s) = (mul_n, half_n, shift_n) where a < 0, else
    (1, half_p, shift_p): ``params`` holds per block of 16 outputs the rows MV_PARAMS of 16 int64."""
    ir = _IR()
    ir.op(f"define void @{MATVEC}(i64 %w, i64 %v, i64 %np, i64 %ng, i64 %bias, i64 %out, i64 %params, i64 %raw, "
          "i64 %lo, i64 %hi) {")
    ir.op("entry:")
    lo, hi = ir.splat(V64, "%lo"), ir.splat(V64, "%hi")
    ir.op("br label %group")
    ir.op("group:")
    ir.op("%g = phi i64 [0, %entry], [%g1, %next]")
    ir.op("%wg = phi i64 [%w, %entry], [%wend, %next]")
    ir.op("br label %seg")
    ir.op("seg:")
    ir.op("%p0 = phi i64 [0, %group], [%pend, %spill]")
    ir.op("%ws = phi i64 [%wg, %group], [%wend, %spill]")
    for b in range(MV_BLOCKS):
        ir.op(f"%acc{b} = phi {V64} [zeroinitializer, %group], [%accn{b}, %spill]")
    rem = ir.v("sub i64 %np, %p0")
    short = ir.v(f"icmp slt i64 {rem}, {MAX_PAIRS}")
    ir.op(f"%pend = add i64 %p0, {ir.v(f'select i1 {short}, i64 {rem}, i64 {MAX_PAIRS}')}")
    ir.op("br label %pair")
    ir.op("pair:")
    ir.op("%p = phi i64 [%p0, %seg], [%p1, %pair]")
    ir.op("%wp = phi i64 [%ws, %seg], [%wp1, %pair]")
    for b in range(MV_BLOCKS):
        for h in "lh":
            ir.op(f"%a{h}{b} = phi {V32} [zeroinitializer, %seg], [%n{h}{b}, %pair]")
    t = ir.v(f"load i32, ptr {ir.v('getelementptr i32, ptr ' + ir.ptr('%v') + ', i64 %p')}, align 4")
    vl = ir.v(f"and i32 {t}, 16711935")  # 0x00FF00FF: the low bytes of both inputs, 0..255
    halves = ir.v(f"bitcast i32 {t} to <2 x i16>")
    vh = ir.v(f"bitcast <2 x i16> {ir.v(f'ashr <2 x i16> {halves}, <i16 8, i16 8>')} to i32")
    splat = {}
    for name, value in (("l", vl), ("h", vh)):
        first = ir.v(f"insertelement {V32} undef, i32 {value}, i32 0")
        splat[name] = ir.v(f"shufflevector {V32} {first}, {V32} undef, <16 x i32> zeroinitializer")
    for b in range(MV_BLOCKS):
        wv = ir.v(f"load {V32}, ptr {ir.ptr(ir.add('%wp', 64 * b))}, align 4")
        for h in "lh":
            ir.op(f"%n{h}{b} = call {V32} @llvm.x86.avx512.vpdpwssd.512({V32} %a{h}{b}, {V32} {wv}, {V32} {splat[h]})")
    ir.op("%p1 = add i64 %p, 1")
    ir.op(f"%wp1 = add i64 %wp, {64 * MV_BLOCKS}")
    ir.op("br i1 " + ir.v("icmp slt i64 %p1, %pend") + ", label %pair, label %spill")
    ir.op("spill:")
    ir.op("%wend = phi i64 [%wp1, %pair]")
    for b in range(MV_BLOCKS):
        low = ir.v(f"sext {V32} %nl{b} to {V64}")
        high = ir.v(f"shl {V64} {ir.v(f'sext {V32} %nh{b} to {V64}')}, {_const(8)}")
        ir.op(f"%accn{b} = add {V64} %acc{b}, {ir.v(f'add {V64} {low}, {high}')}")
    ir.op("br i1 " + ir.v("icmp slt i64 %pend, %np") + ", label %seg, label %sums")
    ir.op("sums:")
    ir.op("br i1 " + ir.v("icmp ne i64 %raw, 0") + ", label %raw_out, label %requant")
    for mode in ("raw_out", "requant"):
        ir.op(f"{mode}:")
        for b in range(MV_BLOCKS):
            o = ir.add(ir.v(f"mul i64 %g, {MV_OUT}"), 16 * b)
            bias = ir.v(f"load {V64}, ptr {ir.ptr(ir.add('%bias', ir.v(f'shl i64 {o}, 3')))}, align 8")
            a = ir.v(f"add {V64} %accn{b}, {bias}")
            if mode == "raw_out":
                ir.op(f"store {V64} {a}, ptr {ir.ptr(ir.add('%out', ir.v(f'shl i64 {o}, 3')))}, align 8")
                continue
            rows = ir.add("%params", ir.v(f"mul i64 {o}, {8 * len(MV_PARAMS)}"))
            p = {name: ir.v(f"load {V64}, ptr {ir.ptr(ir.add(rows, 128 * k))}, align 8")
                 for k, name in enumerate(MV_PARAMS)}
            neg = ir.v(f"icmp slt {V64} {a}, zeroinitializer")
            mul = ir.select(neg, V64, p["mul_n"], _const(1))
            half = ir.select(neg, V64, p["half_n"], p["half_p"])
            shift = ir.select(neg, V64, p["shift_n"], p["shift_p"])
            r = ir.v(f"add {V64} {ir.v(f'mul {V64} {a}, {mul}')}, {half}")
            r = ir.v(f"trunc {V64} {ir.clip(V64, ir.v(f'ashr {V64} {r}, {shift}'), lo, hi)} to {V16}")
            ir.op(f"store {V16} {r}, ptr {ir.ptr(ir.add('%out', ir.v(f'shl i64 {o}, 1')))}, align 2")
        ir.op("br label %next")
    ir.op("next:")
    ir.op("%g1 = add i64 %g, 1")
    ir.op("br i1 " + ir.v("icmp slt i64 %g1, %ng") + ", label %group, label %done")
    ir.op("done:")
    ir.op("ret void")
    ir.op("}")
    return "\n".join(ir.lines)


def pack_matvec(w: np.ndarray) -> np.ndarray:
    """A (Cout, Cin) weight matrix in the layout of :func:`_matvec_ir`: int16 (groups, pairs, MV_OUT, 2),
    Cout padded to whole groups and Cin to whole pairs with zeros."""
    w = np.asarray(w, np.int64)
    cout, cin = w.shape
    w = np.pad(w, ((0, -cout % MV_OUT), (0, cin % 2))).astype(np.int16)
    groups, pairs = w.shape[0] // MV_OUT, w.shape[1] // 2
    return np.ascontiguousarray(w.reshape(groups, MV_OUT, pairs, 2).transpose(0, 2, 1, 3))


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
        module = llvm.parse_assembly(_kernel_ir() + "\n" + _matvec_ir())
        module.verify()
        engine = llvm.create_mcjit_compiler(module, machine)
        engine.finalize_object()
        for name in (SYMBOL, MATVEC):
            llvm.add_symbol(name, engine.get_function_address(name))
        return engine, BUILT
    except Exception as e:
        return None, f"the AVX512-VNNI kernel failed to build: {type(e).__name__}: {e}"


_ENGINE, STATUS = _compile()  # the engine is kept alive: it owns the kernel's code
AVAILABLE = STATUS == BUILT
block = types.ExternalFunction(SYMBOL, types.void(*[types.int64] * 8))
matvec = types.ExternalFunction(MATVEC, types.void(*[types.int64] * 10))


@njit(cache=True, nogil=True, parallel=True)
def _pack(x, top, left, out):
    """:func:`pack` into ``out``."""
    c, h, w = x.shape
    for i in prange(h * out.shape[1]):
        y, p = i // out.shape[1], i % out.shape[1]
        dst, even, odd = out[top + y, p], x[2 * p, y], x[min(2 * p + 1, c - 1), y]
        k = 1 if 2 * p + 1 < c else 0
        for col in range(w):
            dst[2 * (left + col)] = np.int16(even[col])
            dst[2 * (left + col) + 1] = np.int16(odd[col]) * k


def pack(x: np.ndarray, top: int, left: int, hp: int, wp: int) -> np.ndarray:
    """x (C, H, W) at rows top.., columns left.. of a zero int16 array (hp, ceil(C/2), wp, 2).

    (Arrays are allocated by NumPy, which asks Linux for huge pages for large ones: the 4 KiB page
    faults of an array allocated inside a Numba kernel cost more than packing it.)"""
    out = np.zeros((hp, (x.shape[0] + 1) // 2, wp * 2), np.int16)
    _pack(x, top, left, out)
    return out.reshape(hp, out.shape[1], wp, 2)


def pack_squares(x: np.ndarray, wp: int) -> tuple:
    """x (C, H, W) -> the packed (H, ceil(C/2), wp, 2) int16 B and A of x^2 = A * 2^16 + B.

    B = x^2 - A * 2^16 is in -2^15 .. 2^15 - 1 and A = (x^2 + 2^15) >> 16 in 0 .. 2^14, as
    |x| <= 2^15: the IGDN norm's squares (spec §5.4) in two 16-bit halves (int32 arithmetic:
    x^2 + 2^15 <= 2^30 + 2^15)."""
    c, h, _ = x.shape
    low = np.zeros((h, (c + 1) // 2, wp * 2), np.int16)
    high = np.zeros((h, (c + 1) // 2, wp * 2), np.int16)
    _pack_squares(x, low, high)
    return low.reshape(h, low.shape[1], wp, 2), high.reshape(h, low.shape[1], wp, 2)


@njit(cache=True, nogil=True, parallel=True)
def _pack_squares(x, low, high):
    """:func:`pack_squares` into ``low`` and ``high``."""
    c, h, w = x.shape
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


# ---------------------------------------------------------------------------
# AMX-INT8 tiles (see the module docstring): the convolutions' and IGDN's sums on a tile unit

AMX_CONV, AMX_DECONV, AMX_DECONV4, AMX_RAW, AMX_IGDN = ("refcodec_amx_conv", "refcodec_amx_deconv",
                                                     "refcodec_amx_deconv4", "refcodec_amx_raw", "refcodec_amx_igdn")
TILE = 16  # a tile of sums: 16 output channels x 16 positions (int32)
KSTEP = 64  # input channels per tile product: 16 rows of 64 bytes (weights) times 16 rows of 4-channel quads (data)
MAX_KSTEPS = 512  # tile products per sum: 512 * 64 = 32768 channel-taps keep every int32 lane exact
NO_AMX = "no AMX-INT8 on this CPU"
NO_AMX_STATE = "the operating system does not grant this process AMX state"
CONV_PARAMS = ("bias", "half_p", "shift_p", "half_n", "shift_n", "mul_n")  # int64 rows of a block's parameters
IGDN_PARAMS = ("beta", "scale", "half")  # beta int64, scale and half the bits of float64
# The tile products of IGDN, (byte i of x^2, byte j of gamma), in an order where one operand changes at a time.
IGDN_PRODUCTS = [(i, j) for j in range(3) for i in (range(4) if j != 1 else range(3, -1, -1))]
LANES = "<" + ", ".join(f"i32 {i}" for i in range(16)) + ">"
LANES32 = "<" + ", ".join(f"i32 {i // 2}" for i in range(32)) + ">"  # output column 2r + px: position r
INTERLEAVE = "<" + ", ".join(f"i32 {i // 2 + 16 * (i % 2)}" for i in range(32)) + ">"


_DECLARATIONS = [
    "declare void @llvm.x86.ldtilecfg(ptr)",
    "declare void @llvm.x86.tilerelease()",
    "declare void @llvm.x86.tilezero(i8 immarg)",
    "declare void @llvm.x86.tileloadd64(i8 immarg, ptr, i64)",
    "declare void @llvm.x86.tilestored64(i8 immarg, ptr, i64)",
    *[f"declare void @llvm.x86.tdpb{s}d(i8 immarg, i8 immarg, i8 immarg)" for s in ("ss", "su", "us", "uu")],
    f"declare void @llvm.masked.store.v16i16.p0({V16}, ptr, i32 immarg, <16 x i1>)",
    "declare void @llvm.masked.store.v32i16.p0(<32 x i16>, ptr, i32 immarg, <32 x i1>)",
    f"declare {V16} @llvm.masked.load.v16i16.p0(ptr, i32 immarg, <16 x i1>, {V16})",
    f"declare {VF} @llvm.sqrt.v16f64({VF})",
    f"declare {VF} @llvm.floor.v16f64({VF})",
    # palette 1; tiles 0-7: 64 bytes a row (u16 at 16 + 2t), 16 rows (u8 at 48 + t)
    '@cfg = private constant [64 x i8] c"\\01' + "\\00" * 15 + "\\40\\00" * 8 + "\\00" * 16 + "\\10" * 8
    + "\\00" * 8 + '"',
]


def _begin(ir: _IR, name: str, args: list, buffers: int) -> None:
    """A kernel's entry: the tile configuration, a 64-byte aligned buffer %buf of ``buffers`` KiB, and the loop
    over groups of 16 positions (%g; %left: the positions from 16g to %n_valid; %gx = %x + 64g)."""
    ir.op(f"define void @{name}({', '.join('i64 %' + a for a in args)}) {{")
    ir.op("entry:")
    ir.op(f"%buf = alloca [{256 * buffers} x i32], align 64")
    ir.op("%bufi = ptrtoint ptr %buf to i64")
    ir.op("call void @llvm.x86.ldtilecfg(ptr @cfg)")
    ir.op("br label %group")
    ir.op("group:")
    ir.op("%g = phi i64 [0, %entry], [%g1, %rows_done]")
    ir.op("%g16 = shl i64 %g, 4")
    ir.op("%left = sub i64 %n_valid, %g16")
    ir.op("%gx = add i64 %x, " + ir.v("shl i64 %g, 6"))


def _position_mask(ir: _IR) -> None:
    """%mask: lane r < %left, the positions of the group inside the row."""
    left = ir.v(f"trunc i64 {ir.v('select i1 ' + ir.v('icmp slt i64 %left, 16') + ', i64 %left, i64 16')} to i32")
    left = ir.v(f"shufflevector <16 x i32> {ir.v(f'insertelement <16 x i32> undef, i32 {left}, i32 0')}, "
                "<16 x i32> undef, <16 x i32> zeroinitializer")
    ir.op(f"%mask = icmp ult <16 x i32> {LANES}, {left}")


def _rows(ir: _IR, label: str) -> None:
    """The loop over the %n_o channel rows (%n) of the group; block ``label`` precedes it."""
    ir.op("br label %rows")
    ir.op("rows:")
    ir.op(f"%n = phi i64 [0, %{label}], [%n1, %rows]")


def _end(ir: _IR, rows: str = "%n_o") -> None:
    ir.op("%n1 = add i64 %n, 1")
    ir.op("br i1 " + ir.v(f"icmp slt i64 %n1, {rows}") + ", label %rows, label %rows_done")
    ir.op("rows_done:")
    ir.op("%g1 = add i64 %g, 1")
    ir.op("br i1 " + ir.v("icmp slt i64 %g1, %ng") + ", label %group, label %done")
    ir.op("done:")
    ir.op("call void @llvm.x86.tilerelease()")
    ir.op("ret void")
    ir.op("}")


def _tile_row(ir: _IR, buffer: int, tile: int, index: str = "%n") -> str:
    """Row ``index`` of the ``tile``-th tile stored in KiB ``buffer`` + tile of %buf, as 16 int64 lanes."""
    p = ir.v(f"getelementptr {V32}, ptr %buf, i64 {ir.add(index, 16 * (buffer + tile))}")
    return ir.v(f"sext {V32} {ir.v(f'load {V32}, ptr {p}, align 64')} to {V64}")


def _conv_sums(ir: _IR, phase: int) -> None:
    """Tiles 0-2 = the sums of one phase (its segments from %seg + 16 * first), stored at KiB 3 * phase of %buf."""
    name = f"p{phase}"
    for t in range(3):
        ir.tile("zero", t)
    first = "0" if phase == 0 else "%nseg0"
    count = "%nseg0" if phase == 0 else "%nseg1"
    weights = "%w" if phase == 0 else "%w1"
    entry = "group" if phase == 0 else "p0_done"
    ir.op(f"br label %{name}_seg")
    ir.op(f"{name}_seg:")
    ir.op(f"%{name}_s = phi i64 [0, %{entry}], [%{name}_s1, %{name}_segdone]")
    ir.op(f"%{name}_ws = phi i64 [{weights}, %{entry}], [%{name}_wk1, %{name}_segdone]")
    at = ir.v(f"shl i64 {ir.add(f'%{name}_s', first)}, 4")
    off = ir.v(f"load i64, ptr {ir.ptr(ir.add('%seg', at))}, align 8")
    ir.op(f"%{name}_nk = load i64, ptr {ir.ptr(ir.add(ir.add('%seg', at), 8))}, align 8")
    ir.op(f"%{name}_a0 = add i64 %gx, {off}")
    ir.op(f"br label %{name}_k")
    ir.op(f"{name}_k:")
    ir.op(f"%{name}_k0 = phi i64 [0, %{name}_seg], [%{name}_k1, %{name}_k]")
    ir.op(f"%{name}_wk = phi i64 [%{name}_ws, %{name}_seg], [%{name}_wk1, %{name}_k]")
    ir.op(f"%{name}_a = phi i64 [%{name}_a0, %{name}_seg], [%{name}_a1, %{name}_k]")
    ir.tile("load", 4, f"%{name}_wk", 64)
    ir.tile("load", 5, ir.add(f"%{name}_wk", 1024), 64)
    ir.tile("load", 6, f"%{name}_a", "%kstride")
    ir.tile("load", 7, ir.add(f"%{name}_a", "%lo"), "%kstride")
    for signs, c, a, b in (("ss", 0, 4, 6), ("su", 1, 4, 7), ("us", 1, 5, 6), ("uu", 2, 5, 7)):
        ir.tile("dp", signs, c, a, b)
    ir.op(f"%{name}_k1 = add i64 %{name}_k0, 1")
    ir.op(f"%{name}_wk1 = add i64 %{name}_wk, 2048")
    ir.op(f"%{name}_a1 = add i64 %{name}_a, %kstep")
    ir.op("br i1 " + ir.v(f"icmp slt i64 %{name}_k1, %{name}_nk") + f", label %{name}_k, label %{name}_segdone")
    ir.op(f"{name}_segdone:")
    ir.op(f"%{name}_s1 = add i64 %{name}_s, 1")
    ir.op("br i1 " + ir.v(f"icmp slt i64 %{name}_s1, {count}") + f", label %{name}_seg, label %{name}_done")
    ir.op(f"{name}_done:")
    for t in range(3):
        ir.tile("store", t, ir.add("%bufi", 1024 * (3 * phase + t)))


def _requantized(ir: _IR, buffer: int, p: dict, lo: str, hi: str, index: str = "%n") -> str:
    """Row ``index``'s 16 accumulators a = (tile0 << 16) + (tile1 << 8) + tile2 + bias of the tiles at KiB
    ``buffer`` of %buf, requantised (spec §5.6): Clip3(lo, hi, (a * m + half) >> s), (m, half, s) =
    (mul_n, half_n, shift_n) where a < 0, else (1, half_p, shift_p), from the parameter lanes ``p``; as
    int16 lanes."""
    hh, mid, ll = (_tile_row(ir, buffer, t, index) for t in range(3))
    a = ir.v(f"add {V64} {ir.v(f'shl {V64} {hh}, {_const(16)}')}, {ir.v(f'shl {V64} {mid}, {_const(8)}')}")
    a = ir.v(f"add {V64} {a}, {ir.v(f'add {V64} {ll}, ' + p['bias'])}")
    neg = ir.v(f"icmp slt {V64} {a}, zeroinitializer")
    mul = ir.select(neg, V64, p["mul_n"], _const(1))
    half = ir.select(neg, V64, p["half_n"], p["half_p"])
    shift = ir.select(neg, V64, p["shift_n"], p["shift_p"])
    v = ir.v(f"add {V64} {ir.v(f'mul {V64} {a}, {mul}')}, {half}")
    v = ir.v(f"ashr {V64} {v}, {shift}")
    return ir.v(f"trunc {V64} {ir.clip(V64, v, lo, hi)} to {V16}")


CONV_ARGS = ["x", "lo", "kstride", "kstep", "w", "w1", "ng", "seg", "nseg0", "nseg1", "out", "chan", "rowstep",
             "n_valid", "params", "n_o", "act_lo", "act_hi"]


def _amx_conv_ir(ir: _IR, kind: str) -> None:
    """``amx_conv`` (kind "conv": one phase), ``amx_raw`` ("raw": one phase, int64 sums), ``amx_deconv`` ("deconv":
    two, px = 0, 1) or ``amx_deconv4``
    ("deconv4": the four phases of a transposed convolution of at most 4 output channels in one 3 x 3
    correlation), arguments CONV_ARGS, all i64, addresses and strides in bytes: one output row of a block
    of 16 output channels (deconv4: two output rows of every channel).

    For each group g < ng of 16 positions (input columns 16g .. 16g + 15), for each phase: tiles 0-2 = 0;
    for each of its segments s (seg[2s]: the byte offset of its tap from x, seg[2s+1]: its tile products,
    >= 1; phase 1's follow phase 0's nseg0) and each product k: A = 2 KiB of weights (16 output channels x
    64 input channels: high bytes, tile 4, then low bytes, tile 5) read on from w (phase 0) or w1 (phase 1);
    B = 16 quads of input channels x 16 positions x 4 bytes at x + 64g + offset + k * kstep, quads kstride
    bytes apart: high bytes (tile 6) and low bytes, ``lo`` bytes further (tile 7); tile 0 += A_hi B_hi (ss),
    tile 1 += A_hi B_lo (su) + A_lo B_hi (us), tile 2 += A_lo B_lo (uu). Then the requantised sums
    (:func:`_requantized`; ``params``: rows CONV_PARAMS of 16 int64 per channel) of the positions 16g + r <
    n_valid are stored as int16: conv, for each channel n < n_o, at out + n * chan + 2 * (16g + r); raw (one
    phase, no requantisation), the int64 sums plus bias of every position of the group at out + n * chan + 8 *
    (16g + r); deconv,
    at out + n * chan + 2 * (32g + 2r + px); deconv4, whose tile rows are 8py + 4px + o, for each output
    row py = 0, 1 and channel o < n_o, at out + o * chan + py * rowstep + 2 * (32g + 2r + px)."""
    name = {"conv": AMX_CONV, "deconv": AMX_DECONV, "deconv4": AMX_DECONV4, "raw": AMX_RAW}[kind]
    phases = 2 if kind == "deconv" else 1
    _begin(ir, name, CONV_ARGS, 3 * phases)
    for p in range(phases):
        _conv_sums(ir, p)
    lo, hi = ir.splat(V64, "%act_lo"), ir.splat(V64, "%act_hi")
    _position_mask(ir)
    if kind == "deconv4":
        ir.op("%rows_all = shl i64 %n_o, 1")
    _rows(ir, f"p{phases - 1}_done")
    if kind == "raw":
        hh, mid, ll = (_tile_row(ir, 0, t) for t in range(3))
        a = ir.v(f"add {V64} {ir.v(f'shl {V64} {hh}, {_const(16)}')}, {ir.v(f'shl {V64} {mid}, {_const(8)}')}")
        a = ir.v(f"add {V64} {a}, {ir.v(f'add {V64} {ll}, ' + ir.param(V64, '%params', 0))}")
        at = ir.ptr(ir.add(ir.add("%out", ir.v("mul i64 %n, %chan")), ir.v("shl i64 %g, 7")))
        ir.op(f"store {V64} {a}, ptr {at}, align 8")
        _end(ir)
        return
    if kind == "conv":
        params = {name: ir.param(V64, "%params", k) for k, name in enumerate(CONV_PARAMS)}
        value = _requantized(ir, 0, params, lo, hi)
        at = ir.ptr(ir.add(ir.add("%out", ir.v("mul i64 %n, %chan")), ir.v("shl i64 %g, 5")))
        ir.op(f"call void @llvm.masked.store.v16i16.p0({V16} {value}, ptr {at}, i32 2, <16 x i1> %mask)")
        _end(ir)
        return
    if kind == "deconv":
        channel, rows, row = "%n", ("%n", "%n"), ir.add("%out", ir.v("mul i64 %n, %chan"))
    else:  # row n of the loop: output row py = (n >= n_o), channel o = n - py * n_o, tile rows 8py + o, 8py + 4 + o
        py = ir.v(f"zext i1 {ir.v('icmp uge i64 %n, %n_o')} to i64")
        channel = ir.v(f"sub i64 %n, {ir.v(f'mul i64 {py}, %n_o')}")
        first = ir.add(ir.v(f"shl i64 {py}, 3"), channel)
        rows = (first, ir.add(first, 4))
        row = ir.add(ir.add("%out", ir.v(f"mul i64 {channel}, %chan")), ir.v(f"mul i64 {py}, %rowstep"))
    params = {name: ir.param(V64, "%params", k, channel) for k, name in enumerate(CONV_PARAMS)}
    values = [_requantized(ir, 3 * p, params, lo, hi, index) for p, index in zip((0, phases - 1), rows, strict=True)]
    both = ir.v(f"shufflevector {V16} {values[0]}, {V16} {values[1]}, <32 x i32> {INTERLEAVE}")
    mask = ir.v(f"shufflevector <16 x i1> %mask, <16 x i1> undef, <32 x i32> {LANES32}")
    at = ir.ptr(ir.add(row, ir.v("shl i64 %g, 6")))
    ir.op(f"call void @llvm.masked.store.v32i16.p0(<32 x i16> {both}, ptr {at}, i32 2, <32 x i1> {mask})")
    _end(ir, "%rows_all" if kind == "deconv4" else "%n_o")


def _amx_igdn_ir(ir: _IR) -> None:
    """``amx_igdn(x, xchan, c, w, nb, nk, ng, n_valid, out, chan, params)``, all i64 (addresses and strides in
    bytes): one row of IGDN, every channel.

    ``x`` and ``out``: the int16 row of channel 0 of the (C, H, W) input and output, channels ``xchan`` and
    ``chan`` bytes apart. For each group g < ng of 16 positions (16g .. 16g + 15; those from n_valid on are 0): the four
    bytes of x^2 (< 2^31; channels from c on are 0) as B tiles on the stack: plane i, product k (64
    channels) = 16 rows of 16 positions x 4 channels, quads 4q .. 4q + 3 (the layout of ``pack_quads``);
    then for each block b < nb of 16 channels: tiles 0-5 = 0; for each of the nk products k and each
    (i, j) of IGDN_PRODUCTS: A = byte j of gamma, 16 channels x 64 bytes at w + 3 KiB * (b * nk + k) + 1 KiB
    * j (tile 6), B = plane i of product k (tile 7); tile i + j += A B (uu: unsigned bytes). Then for each of
    the block's channels o (below c), with T = beta + sum_s tile_s << 8s and x the row's int16 input,
    Clip3(ACT_MIN, ACT_MAX, floor((x * Isqrt(T) + half) * scale)) is stored as int16 at out + o * chan + 2 *
    (16g + r), r < 16 and 16g + r < n_valid: the float64 operations of refcodec.fast.layers._igdn_value, lane
    by lane. ``params``: per block, the rows IGDN_PARAMS of 16 values each."""
    ir.op(f"define void @{AMX_IGDN}(i64 %x, i64 %xchan, i64 %c, i64 %w, i64 %nb, i64 %nk, i64 %ng, i64 %n_valid, "
          "i64 %out, i64 %chan, i64 %params) {")
    ir.op("entry:")
    ir.op("%buf = alloca [1536 x i32], align 64")
    ir.op("%bufi = ptrtoint ptr %buf to i64")
    ir.op("%planebytes = shl i64 %nk, 10")
    ir.op("%sq = alloca i8, i64 " + ir.v("shl i64 %planebytes, 2") + ", align 64")
    ir.op("%sqi = ptrtoint ptr %sq to i64")
    ir.op("%quads = shl i64 %nk, 4")
    ir.op("call void @llvm.x86.ldtilecfg(ptr @cfg)")
    one, act_lo, act_hi = ir.splat(VF, "1.0"), ir.splat(VF, "-32768.0"), ir.splat(VF, "32767.0")
    ir.op("br label %group")
    ir.op("group:")
    ir.op("%g = phi i64 [0, %entry], [%g1, %block_done]")
    ir.op("%left = sub i64 %n_valid, " + ir.v("shl i64 %g, 4"))
    ir.op("%g32 = shl i64 %g, 5")
    _position_mask(ir)
    ir.op("br label %quad")
    ir.op("quad:")  # the squares' bytes of channels 4q .. 4q + 3
    ir.op("%q = phi i64 [0, %group], [%q1, %quad]")
    squares = []
    for e in range(4):
        ch = ir.add(ir.v("shl i64 %q, 2"), e)
        mask = ir.v(f"select i1 {ir.v(f'icmp slt i64 {ch}, %c')}, <16 x i1> %mask, <16 x i1> zeroinitializer")
        at = ir.ptr(ir.add(ir.add("%x", ir.v(f"mul i64 {ch}, %xchan")), "%g32"))
        xv = ir.v(f"call {V16} @llvm.masked.load.v16i16.p0(ptr {at}, i32 2, <16 x i1> {mask}, {V16} zeroinitializer)")
        xv = ir.v(f"sext {V16} {xv} to {V32}")
        squares.append(ir.v(f"mul {V32} {xv}, {xv}"))  # <= 2^30
    for i in range(4):
        word = None
        for e, sq in enumerate(squares):
            byte = ir.v(f"and {V32} {ir.v(f'lshr {V32} {sq}, {_const32(8 * i)}')}, {_const32(255)}")
            byte = ir.v(f"shl {V32} {byte}, {_const32(8 * e)}") if e else byte
            word = byte if word is None else ir.v(f"or {V32} {word}, {byte}")
        at = ir.add(ir.add("%sqi", ir.v(f"mul i64 %planebytes, {i}")), ir.v("shl i64 %q, 6"))
        ir.op(f"store {V32} {word}, ptr {ir.ptr(at)}, align 64")
    ir.op("%q1 = add i64 %q, 1")
    ir.op("br i1 " + ir.v("icmp slt i64 %q1, %quads") + ", label %quad, label %block")
    ir.op("block:")
    ir.op("%b = phi i64 [0, %quad], [%b1, %rows_done]")
    for tile in range(6):
        ir.tile("zero", tile)
    ir.op("%wb = add i64 %w, " + ir.v("mul i64 " + ir.v("mul i64 %b, %nk") + ", 3072"))
    ir.op("br label %k")
    ir.op("k:")
    ir.op("%k0 = phi i64 [0, %block], [%k1, %k]")
    ir.op("%wk = phi i64 [%wb, %block], [%wk1, %k]")
    ir.op("%sk = add i64 %sqi, " + ir.v("shl i64 %k0, 10"))
    held_a = held_b = None
    for i, j in IGDN_PRODUCTS:
        if j != held_a:
            ir.tile("load", 6, ir.add("%wk", 1024 * j), 64)
            held_a = j
        if i != held_b:
            ir.tile("load", 7, ir.add("%sk", ir.v(f"mul i64 %planebytes, {i}")), 64)
            held_b = i
        ir.tile("dp", "uu", i + j, 6, 7)
    ir.op("%k1 = add i64 %k0, 1")
    ir.op("%wk1 = add i64 %wk, 3072")
    ir.op("br i1 " + ir.v("icmp slt i64 %k1, %nk") + ", label %k, label %sums")
    ir.op("sums:")
    for tile in range(6):
        ir.tile("store", tile, ir.add("%bufi", 1024 * tile))
    ir.op("%o0 = shl i64 %b, 4")
    ir.op("%rest = sub i64 %c, %o0")
    ir.op("%n_o = select i1 " + ir.v("icmp slt i64 %rest, 16") + ", i64 %rest, i64 16")
    ir.op("%pb = add i64 %params, " + ir.v("mul i64 %b, 384"))
    ir.op("br label %rows")
    ir.op("rows:")
    ir.op("%n = phi i64 [0, %sums], [%n1, %rows]")
    t = ir.param(V64, "%pb", 0)
    for s in range(6):
        row = _tile_row(ir, 0, s)
        t = ir.v(f"add {V64} {t}, {ir.v(f'shl {V64} {row}, {_const(8 * s)}') if s else row}")
    scale, half = ir.param(VF, "%pb", 1), ir.param(VF, "%pb", 2)
    tf = ir.v(f"sitofp {V64} {t} to {VF}")
    r = ir.v(f"call {VF} @llvm.sqrt.v16f64({VF} {tf})")
    r = ir.v(f"call {VF} @llvm.floor.v16f64({VF} {r})")
    over = ir.v(f"fcmp ogt {VF} {ir.v(f'fmul {VF} {r}, {r}')}, {tf}")
    r = ir.v(f"fsub {VF} {r}, {ir.select(over, VF, one, 'zeroinitializer')}")
    r1 = ir.v(f"fadd {VF} {r}, {one}")
    under = ir.v(f"fcmp ole {VF} {ir.v(f'fmul {VF} {r1}, {r1}')}, {tf}")
    r = ir.v(f"fadd {VF} {r}, {ir.select(under, VF, one, 'zeroinitializer')}")
    channel = ir.add("%o0", "%n")
    offset = ir.add(ir.v(f"mul i64 {channel}, %chan"), "%g32")
    xp = ir.ptr(ir.add("%x", ir.add(ir.v(f"mul i64 {channel}, %xchan"), "%g32")))
    xv = ir.v(f"call {V16} @llvm.masked.load.v16i16.p0(ptr {xp}, i32 2, <16 x i1> %mask, {V16} zeroinitializer)")
    a = ir.v(f"fmul {VF} {ir.v(f'sitofp {V16} {xv} to {VF}')}, {r}")
    q = ir.v(f"fmul {VF} {ir.v(f'fadd {VF} {a}, {half}')}, {scale}")
    q = ir.clip(VF, ir.v(f"call {VF} @llvm.floor.v16f64({VF} {q})"), act_lo, act_hi)
    q = ir.v(f"fptosi {VF} {q} to {V16}")
    ir.op(f"call void @llvm.masked.store.v16i16.p0({V16} {q}, ptr {ir.ptr(ir.add('%out', offset))}, i32 2, "
          "<16 x i1> %mask)")
    ir.op("%n1 = add i64 %n, 1")
    ir.op("br i1 " + ir.v("icmp slt i64 %n1, %n_o") + ", label %rows, label %rows_done")
    ir.op("rows_done:")
    ir.op("%b1 = add i64 %b, 1")
    ir.op("br i1 " + ir.v("icmp slt i64 %b1, %nb") + ", label %block, label %block_done")
    ir.op("block_done:")
    ir.op("%g1 = add i64 %g, 1")
    ir.op("br i1 " + ir.v("icmp slt i64 %g1, %ng") + ", label %group, label %done")
    ir.op("done:")
    ir.op("call void @llvm.x86.tilerelease()")
    ir.op("ret void")
    ir.op("}")


def _const32(value: int) -> str:
    return "<" + ", ".join([f"i32 {value}"] * 16) + ">"


def amx_ir() -> str:
    """The LLVM IR module of the AMX kernels."""
    kernels = []
    for build in (*[lambda ir, kind=kind: _amx_conv_ir(ir, kind) for kind in ("conv", "deconv", "deconv4", "raw")],
                  _amx_igdn_ir):
        ir = _IR()
        build(ir)
        kernels += ir.lines
    return "\n".join(_DECLARATIONS + kernels)


def _request_amx_state() -> bool:
    """Ask Linux for AMX tile data in this process (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA): True if granted."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    arch_prctl, req_xcomp_perm, xtiledata = 158, 0x1023, 18
    return libc.syscall(arch_prctl, req_xcomp_perm, ctypes.c_ulong(xtiledata)) == 0


def _compile_amx() -> tuple:
    """Build the AMX kernels for the host CPU, callable from Numba by their names: (engine or None, status)."""
    import llvmlite.binding as llvm

    if config.DISABLE_JIT:
        return None, NO_JIT
    features = llvm.get_host_cpu_features()
    if not (features.get("amx-int8") and features.get("amx-tile") and features.get("avx512dq")
            and features.get("avx512bw")):
        return None, NO_AMX
    if not _request_amx_state():
        return None, NO_AMX_STATE
    try:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=features.flatten(), opt=3)
        module = llvm.parse_assembly(amx_ir())
        module.verify()
        engine = llvm.create_mcjit_compiler(module, machine)
        engine.finalize_object()
        for name in (AMX_CONV, AMX_DECONV, AMX_DECONV4, AMX_RAW, AMX_IGDN):
            llvm.add_symbol(name, engine.get_function_address(name))
        return engine, BUILT
    except Exception as e:
        return None, f"the AMX kernels failed to build: {type(e).__name__}: {e}"


_AMX_ENGINE, AMX_STATUS = _compile_amx()
AMX_AVAILABLE = AMX_STATUS == BUILT
amx_conv = types.ExternalFunction(AMX_CONV, types.void(*[types.int64] * len(CONV_ARGS)))
amx_deconv = types.ExternalFunction(AMX_DECONV, types.void(*[types.int64] * len(CONV_ARGS)))
amx_deconv4 = types.ExternalFunction(AMX_DECONV4, types.void(*[types.int64] * len(CONV_ARGS)))
amx_raw = types.ExternalFunction(AMX_RAW, types.void(*[types.int64] * len(CONV_ARGS)))
amx_igdn = types.ExternalFunction(AMX_IGDN, types.void(*[types.int64] * 11))


@njit(cache=True, nogil=True)
def _quad_words(x0, x1, x2, x3, hi, lo):
    """hi[i], lo[i] = the high bytes (x >> 8, two's complement) and the low bytes of x0[i] .. x3[i] (int16 values),
    x0's in the lowest byte: a vectorisable loop of its own."""
    for i in range(x0.shape[0]):
        v0, v1, v2, v3 = np.int32(x0[i]), np.int32(x1[i]), np.int32(x2[i]), np.int32(x3[i])
        hi[i] = np.uint32(((v0 >> 8) & 255) | (((v1 >> 8) & 255) << 8) | (((v2 >> 8) & 255) << 16) | ((v3 >> 8) << 24))
        lo[i] = np.uint32((v0 & 255) | ((v1 & 255) << 8) | ((v2 & 255) << 16) | (v3 << 24))


def pack_quads(x: np.ndarray, pad: int, hp: int, wp: int, cq: int, top: int | None = None,
               parallel: bool = True) -> np.ndarray:
    """x (C, H, W) -> (2, hp, cq, wp * 4) uint8: the high bytes (x >> 8, two's complement) and the low bytes
    (x & 255) of x[4q + e, y, x] at [., top + y, q, 4 * (pad + x) + e] (top = pad unless given), zero elsewhere.
    ``parallel`` False: in the calling thread only (refcodec.fast.joint, which runs outside the lock of
    refcodec.fast.threads).

    (Allocated by NumPy, which asks Linux for huge pages for large arrays: the 4 KiB page faults of an
    array allocated inside a Numba kernel cost more than packing it.)"""
    out = np.zeros((2, hp, cq, wp), np.uint32)  # 4 bytes (channels 4q .. 4q + 3) per word
    base, row0 = _row_range(x)
    (_pack_quads if parallel else _pack_quads_serial)(base, row0, x.shape[1], pad if top is None else top, pad, out,
                                                      np.zeros(x.shape[2], x.dtype))
    return out.view(np.uint8)


def _row_range(x: np.ndarray) -> tuple:
    """(a C-contiguous (C, H', W) array, first row) of which x (C, H, W) is rows first .. first + H - 1: x itself,
    or the array x was cut from (the bands of refcodec.decoder.bands), or a copy."""
    if x.flags.c_contiguous:
        return x, 0
    base = x.base
    if (isinstance(base, np.ndarray) and base.flags.c_contiguous and base.dtype == x.dtype and base.ndim == 3
            and base.strides == x.strides and base.shape[0] == x.shape[0] and base.shape[2] == x.shape[2]):
        row0, rest = divmod(x.ctypes.data - base.ctypes.data, x.strides[1])
        if rest == 0 and row0 >= 0 and row0 + x.shape[1] <= base.shape[1]:
            return base, row0
    return np.ascontiguousarray(x), 0


@njit(cache=True, nogil=True)
def _pack_quad(x, row0, top, pad, out, zero, i):
    """Item i of :func:`pack_quads` (row i // cq, quad i % cq) into ``out`` (2, hp, cq, wp) uint32, from row
    row0 + i // cq of x; ``zero``: a row of 0."""
    c, _, w = x.shape
    cq = out.shape[2]
    y, q = i // cq, i % cq
    ch, row = 4 * q, row0 + y
    if ch < c:
        _quad_words(x[ch, row], x[ch + 1, row] if ch + 1 < c else zero, x[ch + 2, row] if ch + 2 < c else zero,
                    x[ch + 3, row] if ch + 3 < c else zero, out[0, top + y, q, pad : pad + w],
                    out[1, top + y, q, pad : pad + w])


@njit(cache=True, nogil=True, parallel=True)
def _pack_quads(x, row0, h, top, pad, out, zero):
    """:func:`pack_quads` of rows row0 .. row0 + h - 1 of x, on every thread."""
    for i in prange(h * out.shape[2]):
        _pack_quad(x, row0, top, pad, out, zero, i)


@njit(cache=True, nogil=True)
def _pack_quads_serial(x, row0, h, top, pad, out, zero):
    """:func:`pack_quads` of rows row0 .. row0 + h - 1 of x, in the calling thread."""
    for i in range(h * out.shape[2]):
        _pack_quad(x, row0, top, pad, out, zero, i)


def amx_weight_tiles(mats: list) -> np.ndarray:
    """Per-tap (Cout, Cin) weight matrices -> uint8 (blocks of 16 output channels, taps, products, 2, 16, 64):
    A tiles of the high bytes (w >> 8, two's complement) and the low bytes (w & 255); row n, byte k holds
    output channel 16 * block + n and input channel 64 * product + k."""
    w = np.stack(mats).astype(np.int64)  # (T, Cout, Cin)
    taps, cout, cin = w.shape
    w = np.pad(w, ((0, 0), (0, -cout % TILE), (0, -cin % KSTEP)))
    halves = np.stack([(w >> 8) & 255, w & 255]).astype(np.uint8)  # (2, T, Cout', Cin')
    tiles = halves.reshape(2, taps, w.shape[1] // TILE, TILE, w.shape[2] // KSTEP, KSTEP)
    return np.ascontiguousarray(tiles.transpose(2, 1, 4, 0, 3, 5))  # (block, tap, k, half, n, byte)


def amx_gamma_tiles(gamma: np.ndarray) -> np.ndarray:
    """IGDN's gamma (C, C), 0 <= gamma < 2^23 -> uint8 (blocks of 16, products, 3, 16, 64): A tiles of its bytes
    0, 1, 2; row n, byte k holds gamma[16 * block + n][64 * product + k]."""
    g = gamma.astype(np.int64)
    c = g.shape[0]
    g = np.pad(g, ((0, -c % TILE), (0, -c % KSTEP)))
    parts = np.stack([(g >> (8 * i)) & 255 for i in range(3)]).astype(np.uint8)  # (3, C', C'')
    tiles = parts.reshape(3, g.shape[0] // TILE, TILE, g.shape[1] // KSTEP, KSTEP)
    return np.ascontiguousarray(tiles.transpose(1, 3, 0, 2, 4))  # (block, k, byte, n, byte k)
