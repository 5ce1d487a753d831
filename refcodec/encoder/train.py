"""Train a float model of any architecture (optional ``train`` extra; needs torch).

Training is a long-running, resumable job. Every ``--checkpoint-seconds`` the
float weights are written, in half precision, to ONE file per model (overwritten
in place, atomically), with the iteration count and the run record in its
metadata. Restarting the same command on any machine resumes from that file.

    python -m refcodec.encoder.train --arch factorized --data ../shared/data/train

``--arch`` is factorized (bmshj2018-factorized), hyperprior
(bmshj2018-hyperprior), mean-scale (mbt2018-mean) or joint (mbt2018). The float
model is what ``refcodec.encoder.export`` turns into the integer model file (spec §6);
the decoder never sees these weights.

Recipe notes (measured on the 2-core AVX-512 CPU this project is built on):
bf16 autocast (``--bf16``) halves the time of an iteration on CPUs with
AVX512-BF16, but is 7-90x slower than fp32 on CPUs without it (measured: AMD
EPYC without AVX-512, 5x5 conv 0.013 s fp32 vs 0.087-1.1 s bf16), so fp32 is
the default. The rate term is always fp32. Small patches early, larger later. Distortion is
computed on the straight-through rounded latent (what the decoder sees); the
rate on the noisy latent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from refcodec.decoder.model import MEAN_ARCHITECTURES
from refcodec.encoder.floatnet import (  # §5.6 leaky slope 2^-6; §8.8 means in 2^-4
    LEAKY_SLOPE,
    MEAN_SHIFT,
    hyper_analysis_inputs,
)

# ---------------------------------------------------------------------------
# Float model


class NonNegative(nn.Module):
    """Reparametrisation keeping a parameter >= ``minimum`` (GDN beta/gamma)."""

    pedestal = 2.0**-36

    def __init__(self, init: torch.Tensor, minimum: float = 0.0):
        super().__init__()
        self.bound = (minimum + self.pedestal) ** 0.5
        self.p = nn.Parameter(torch.sqrt(torch.clamp(init + self.pedestal, min=self.pedestal)))

    def forward(self) -> torch.Tensor:
        p = self.p + (torch.clamp(self.p, min=self.bound) - self.p).detach()  # lower bound, gradient passes
        return p * p - self.pedestal


class GDN(nn.Module):
    """y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2); inverse multiplies instead."""

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = NonNegative(torch.ones(channels), minimum=1e-6)
        self.gamma = NonNegative(0.1 * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        gamma = self.gamma().view(c, c, 1, 1).to(x.dtype)
        norm = F.conv2d(x * x, gamma, self.beta().to(x.dtype))
        norm = torch.clamp(norm.float(), min=1e-6)
        scale = torch.sqrt(norm) if self.inverse else torch.rsqrt(norm)
        return (x.float() * scale).to(x.dtype)


def conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


class FactorizedDensity(nn.Module):
    """Ballé et al. 2018 univariate non-parametric density, one per channel."""

    filters = (3, 3, 3)
    tail_mass = 1e-9
    target: torch.Tensor  # a buffer

    def __init__(self, channels: int, init_scale: float = 10.0):
        super().__init__()
        dims = (1,) + self.filters + (1,)
        scale = init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        t = math.log(2 / self.tail_mass - 1)
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        self.register_buffer("target", torch.tensor([-t, 0.0, t]))

    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """x: (C, 1, K) -> cumulative logits (C, 1, K)."""
        for i in range(len(self.filters) + 1):
            x = torch.matmul(F.softplus(self.matrices[i]), x) + self.biases[i]
            if i < len(self.filters):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """P(round(y)) under the density convolved with a unit box; y: (B, C, H, W)."""
        b, c, h, w = y.shape
        v = y.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.logits_cdf(v - 0.5)
        upper = self.logits_cdf(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        p = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        p = torch.clamp(p, min=1e-9)
        return p.reshape(c, b, h, w).permute(1, 0, 2, 3)

    def aux_loss(self) -> torch.Tensor:
        return torch.abs(self.logits_cdf(self.quantiles) - self.target).sum()


def conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=1, padding=1)


def quantize(y: torch.Tensor):
    """(noisy y for the rate, straight-through rounded y for the distortion)."""
    return y + torch.empty_like(y).uniform_(-0.5, 0.5), y + (torch.round(y) - y).detach()


QUALITY_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)  # CompressAI's qualities 1-8


class Gains(nn.Module):
    """Per-level channel gains of a variable-rate model (Cui et al. 2021, asymmetric gained VAE).

    The encoder multiplies y by ``y[level]`` (and z by ``z[level]``) before quantisation;
    the decoder multiplies the decoded values by the inverse gains ``y_inv[level]`` and
    ``z_inv[level]`` before synthesis and hyper-synthesis. Gains are stored as logarithms.
    Initialised at sqrt(lambda / lambda_ref): the step of a uniform quantiser that
    minimises lambda * D + R at high rate scales as lambda^-1/2.
    """

    lambdas: torch.Tensor  # a buffer

    def __init__(self, lambdas: tuple, m: int, n: int, reference: float = 0.013):
        super().__init__()
        self.register_buffer("lambdas", torch.tensor(lambdas, dtype=torch.float32))
        log_g = 0.5 * torch.log(self.lambdas / reference)[:, None]
        self.y = nn.Parameter(log_g.repeat(1, m))
        self.y_inv = nn.Parameter(-log_g.repeat(1, m))
        self.z = nn.Parameter(torch.zeros(len(lambdas), n))
        self.z_inv = nn.Parameter(torch.zeros(len(lambdas), n))

    def get(self, name: str, level: torch.Tensor) -> torch.Tensor:
        """exp(gain) of each sample's level as (B, C, 1, 1)."""
        return torch.exp(getattr(self, name)[level])[:, :, None, None]


def gain(model: FactorizedPrior, name: str, x: torch.Tensor, level) -> torch.Tensor:
    """x times the model's gain ``name`` at ``level`` (x itself for a single-rate model)."""
    return x if level is None else x * model.gains.get(name, level)


class FactorizedPrior(nn.Module):
    """bmshj2018-factorized: 4 x (conv5x5/2 + GDN) analysis, mirrored synthesis."""

    gains: Gains  # set on variable-rate models only (train --ladder)

    def __init__(self, n: int, m: int):
        super().__init__()
        self.n, self.m = n, m
        self.bf16 = False
        self.g_a = nn.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))
        self.g_s = nn.Sequential(
            deconv(m, n), GDN(n, True), deconv(n, n), GDN(n, True), deconv(n, n), GDN(n, True), deconv(n, 3)
        )
        self.density = FactorizedDensity(m)

    def transform(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return net(x).float()

    def densities(self) -> list:
        return [self.density]

    def forward(self, x: torch.Tensor, level=None):
        """Training pass: (x_hat, [likelihoods of every coded tensor])."""
        y_noisy, y_ste = quantize(self.transform(self.g_a, x))
        return self.transform(self.g_s, y_ste), [self.density.likelihood(y_noisy)]

    @torch.no_grad()
    def code(self, x: torch.Tensor, level=None):
        """Inference with rounded latents: (estimated bits, x_hat)."""
        y_hat = torch.round(self.g_a(x))
        return -torch.log2(self.density.likelihood(y_hat)).sum().item(), self.g_s(y_hat)


class LowerBound(torch.autograd.Function):
    """max(x, bound), whose gradient passes where x >= bound or where descent would raise x.

    (A gradient that always passed would keep pushing a scale already below the
    bound further down, through the layers it shares with every other scale.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp(x, min=bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)), None


SCALE_BOUND = 0.11  # the least scale of the Gaussian conditionals (CompressAI's)


def gaussian_likelihood(y: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """P(round(y)) for a zero-mean Gaussian of the given scale (lower bound 0.11) convolved with a unit box."""
    scales = LowerBound.apply(scales, SCALE_BOUND)
    v = torch.abs(y)
    normal = torch.distributions.Normal(0.0, 1.0)
    p = normal.cdf((0.5 - v) / scales) - normal.cdf((-0.5 - v) / scales)
    return torch.clamp(p, min=1e-9)


class ScaleHyperprior(FactorizedPrior):
    """bmshj2018-hyperprior: a hyperprior z (factorized density) predicts the scale of every latent."""

    def __init__(self, n: int, m: int):
        super().__init__(n, m)
        self.h_a = nn.Sequential(conv3(m, n), nn.ReLU(), conv(n, n), nn.ReLU(), conv(n, n))
        self.h_s = nn.Sequential(deconv(n, n), nn.ReLU(), deconv(n, n), nn.ReLU(), conv3(n, m), nn.ReLU())
        self.density = FactorizedDensity(n)  # of z

    def forward(self, x: torch.Tensor, level=None):
        y = gain(self, "y", self.transform(self.g_a, x), level)
        z_noisy, z_ste = quantize(gain(self, "z", self.transform(self.h_a, torch.abs(y)), level))
        scales = self.transform(self.h_s, gain(self, "z_inv", z_ste, level))
        y_noisy, y_ste = quantize(y)
        return (self.transform(self.g_s, gain(self, "y_inv", y_ste, level)),
                [gaussian_likelihood(y_noisy, scales), self.density.likelihood(z_noisy)])

    @torch.no_grad()
    def code(self, x: torch.Tensor, level=None):
        y = gain(self, "y", self.g_a(x), level)
        z_hat = torch.round(gain(self, "z", self.h_a(torch.abs(y)), level))
        y_hat = torch.round(y)
        bits = -torch.log2(gaussian_likelihood(y_hat, self.h_s(gain(self, "z_inv", z_hat, level)))).sum() \
            - torch.log2(self.density.likelihood(z_hat)).sum()
        return bits.item(), self.g_s(gain(self, "y_inv", y_hat, level))


def leaky() -> nn.Module:
    return nn.LeakyReLU(LEAKY_SLOPE)


def ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def fixed_point(means: torch.Tensor) -> torch.Tensor:
    """Means rounded to units of 2^-MEAN_SHIFT (straight-through), as the integer decoder has them."""
    return ste_round(means * 2**MEAN_SHIFT) / 2**MEAN_SHIFT


def hyper_input(y: torch.Tensor) -> torch.Tensor:
    """What h_a of the architectures with means sees: (|y|, y) (refcodec.encoder.floatnet.hyper_analysis)."""
    return torch.cat([torch.abs(y), y], 1)


class MeanScaleHyperprior(FactorizedPrior):
    """mbt2018-mean: h_s predicts a mean and a scale for every latent.

    h_a is the scale hyperprior's (ReLU) on (|y|, y): its input and the signs the
    means need (mbt2018's h_a sees y alone, with leaky ReLU; Annex A.1.3).

    The decoder's mean is a fixed-point number in units of 2^-MEAN_SHIFT and it
    rebuilds y_hat = v + mean from the integer v it decodes (spec §8.8), so the
    rate is that of y - mean with the straight-through fixed-point mean, and the
    distortion is computed on y_hat = round(y - mean) + mean.
    """

    def __init__(self, n: int, m: int):
        super().__init__(n, m)
        self.h_a = nn.Sequential(conv3(hyper_analysis_inputs("mean-scale", m), n), nn.ReLU(), conv(n, n), nn.ReLU(),
                                 conv(n, n))
        self.h_s = nn.Sequential(deconv(n, m), leaky(), deconv(m, m * 3 // 2), leaky(), conv3(m * 3 // 2, 2 * m))
        self.density = FactorizedDensity(n)  # of z

    def params(self, z_hat: torch.Tensor, y_hat: torch.Tensor):
        """(scales, fixed-point means); ``y_hat`` (the context's input) is unused here."""
        scales, means = self.transform(self.h_s, z_hat).chunk(2, 1)
        return scales, fixed_point(means)

    def forward(self, x: torch.Tensor, level=None):
        y = gain(self, "y", self.transform(self.g_a, x), level)
        z_noisy, z_ste = quantize(gain(self, "z", self.transform(self.h_a, hyper_input(y)), level))
        scales, means = self.params(gain(self, "z_inv", z_ste, level), ste_round(y))
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_hat = ste_round(y - means) + means
        return (self.transform(self.g_s, gain(self, "y_inv", y_hat, level)),
                [gaussian_likelihood(y_noisy - means, scales), self.density.likelihood(z_noisy)])

    @torch.no_grad()
    def code(self, x: torch.Tensor, level=None):
        """Estimated bits and x_hat; for joint the context sees round(y), not the decoder's y_hat."""
        y = gain(self, "y", self.g_a(x), level)
        z_hat = torch.round(gain(self, "z", self.h_a(hyper_input(y)), level))
        scales, means = self.params(gain(self, "z_inv", z_hat, level), torch.round(y))
        v = torch.round(y - means)
        bits = -torch.log2(gaussian_likelihood(v, scales)).sum() - torch.log2(self.density.likelihood(z_hat)).sum()
        return bits.item(), self.g_s(gain(self, "y_inv", v + means, level))


class MaskedConv(nn.Conv2d):
    """5x5 convolution seeing only the positions decoded before the centre in raster order (mask type A)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 5, stride=1, padding=2)
        mask = torch.zeros(1, 1, 5, 5)
        mask[..., :2, :] = 1
        mask[..., 2, :2] = 1
        self.register_buffer("mask", mask)

    mask: torch.Tensor  # a buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=2)


def conv1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


class JointAutoregressive(MeanScaleHyperprior):
    """mbt2018: masked 5x5 context over y_hat, concatenated with h_s, through 1x1 entropy parameters."""

    def __init__(self, n: int, m: int):
        super().__init__(n, m)
        self.context = MaskedConv(m, 2 * m)
        self.entropy_parameters = nn.Sequential(
            conv1(4 * m, m * 10 // 3), leaky(), conv1(m * 10 // 3, m * 8 // 3), leaky(), conv1(m * 8 // 3, 2 * m))

    def params(self, z_hat: torch.Tensor, y_hat: torch.Tensor):
        h = self.transform(self.h_s, z_hat)
        ctx = self.transform(self.context, y_hat)
        scales, means = self.transform(self.entropy_parameters, torch.cat([ctx, h], 1)).chunk(2, 1)
        return scales, fixed_point(means)


ARCHITECTURES = {"factorized": FactorizedPrior, "hyperprior": ScaleHyperprior,
                 "mean-scale": MeanScaleHyperprior, "joint": JointAutoregressive}



# ---------------------------------------------------------------------------
# Data


def load_crops(folder: Path) -> torch.Tensor:
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG files in {folder}")
    arr = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()  # uint8 (K, 3, 256, 256)


def batch(data: torch.Tensor, size: int, patch: int, gen: torch.Generator) -> torch.Tensor:
    k, _, h, w = data.shape
    idx = torch.randint(k, (size,), generator=gen)
    ys = torch.randint(h - patch + 1, (size,), generator=gen)
    xs = torch.randint(w - patch + 1, (size,), generator=gen)
    flips = torch.randint(2, (size,), generator=gen)
    out = torch.empty(size, 3, patch, patch, dtype=torch.uint8)
    for i in range(size):
        crop = data[idx[i], :, ys[i] : ys[i] + patch, xs[i] : xs[i] + patch]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out.float().div_(255.0)


# ---------------------------------------------------------------------------
# Checkpoints: one half-precision safetensors file per model, overwritten in place


def save_checkpoint(model: nn.Module, path: Path, meta: dict) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in meta.items()})
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(tensors, float ones as fp32; metadata) of a checkpoint."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- safe_open has no __iter__
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, meta


def load_checkpoint(model: nn.Module, path: Path) -> dict:
    state, meta = read_checkpoint(path)
    model.load_state_dict(state)
    return meta


def source_summary(path: Path) -> dict:
    """What a warm start starts from: the source checkpoint's iteration, wall time, record and own warm start."""
    meta = read_checkpoint(path)[1]
    return {k: meta[k] for k in ("iteration", "wall_seconds", "record", "warm_start") if k in meta}


def warm_start(model: nn.Module, path: Path) -> list:
    """Copy from another model's checkpoint every tensor whose name and shape match; returns their names."""
    own = model.state_dict()
    taken = {k: v for k, v in read_checkpoint(path)[0].items() if k in own and v.shape == own[k].shape}
    model.load_state_dict(taken, strict=False)
    return sorted(taken)


@torch.no_grad()
def nest(model: MeanScaleHyperprior, path: Path, offset: float = 4.0) -> None:
    """Start a mean-scale or joint model as the function of a trained scale hyperprior.

    g_a, g_s and the z density are copied. Every hyper layer of ``model`` holds
    the hyperprior's layer in its leading block, and the inputs the hyperprior
    layer did not have (y beside |y| in h_a, the extra channels of h_s) are cut
    off from its outputs; units the hyperprior did not have keep their random
    initialisation. The means start at 0 and, for joint, the context model is cut
    off and the entropy-parameter layers pass h_s's scales and means through
    (the means shifted by ``offset`` on the way, so that the leaky ReLUs pass them
    unchanged). So the new model starts where the hyperprior is (up to its ReLUs
    becoming leaky) and training adds the means and the context to it.
    """
    hp = read_checkpoint(path)[0]
    own = model.state_dict()
    state = {k: v for k, v in hp.items() if k in own and v.shape == own[k].shape and not k.startswith("h_")}

    def embed(name: str, deconv: bool, new_outputs_zero: bool = False):
        """The hyperprior's layer ``name`` in the leading block; its outputs cut off from our extra inputs."""
        w, b = own[f"{name}.weight"].clone(), own[f"{name}.bias"].clone()
        old = hp[f"{name}.weight"]
        w_oi, old_oi = (w.transpose(0, 1), old.transpose(0, 1)) if deconv else (w, old)  # (out, in, k, k) views
        n_out, n_in = old_oi.shape[:2]
        w_oi[:n_out, n_in:] = 0
        w_oi[:n_out, :n_in] = old_oi
        b[:n_out] = hp[f"{name}.bias"]
        if new_outputs_zero:
            w_oi[n_out:], b[n_out:] = 0, 0
        state.update({f"{name}.weight": w, f"{name}.bias": b})

    m = model.m
    for name in ("h_a.0", "h_a.2", "h_a.4"):  # h_a.0 sees (|y|, y): the hyperprior's h_a on |y|, y cut off
        embed(name, deconv=False)
    embed("h_s.0", deconv=True)
    embed("h_s.2", deconv=True)
    embed("h_s.4", deconv=False, new_outputs_zero=True)  # scales as the hyperprior's, means 0
    # The hyperprior's second hidden layer is a ReLU, ours leaky (slope a): where there is room,
    # add the negated units, since relu(x) = (leaky(x) + a * leaky(-x)) / (1 - a^2).
    n, a = hp["h_s.2.weight"].shape[1], LEAKY_SLOPE
    w2, b2, w4 = state["h_s.2.weight"], state["h_s.2.bias"], state["h_s.4.weight"]
    if w2.shape[1] >= 2 * n:
        w2[:, n : 2 * n], b2[n : 2 * n] = -w2[:, :n], -b2[:n]
        w4[:m, : 2 * n] = torch.cat([hp["h_s.4.weight"], a * hp["h_s.4.weight"]], 1) / (1 - a * a)
    if isinstance(model, JointAutoregressive):
        # ep.0 sees (context, h_s output); its first 2M units, and those of ep.2 and ep.4, pass the
        # h_s output through; the other units keep their initialisation but are cut off from them.
        pass_through = torch.arange(2 * m)
        for name, first, bias in (("entropy_parameters.0", 2 * m, offset), ("entropy_parameters.2", 0, 0.0),
                                  ("entropy_parameters.4", 0, -offset)):
            w, b = own[f"{name}.weight"].clone(), own[f"{name}.bias"].clone()
            w[: 2 * m] = 0
            w[pass_through, first + pass_through] = 1
            b[:m], b[m : 2 * m] = 0, bias
            state.update({f"{name}.weight": w, f"{name}.bias": b})
    model.load_state_dict(state, strict=False)


def channel_map(old: int, new: int, m_old: int, m_new: int) -> torch.Tensor:
    """Where each of ``old`` channels goes in a widened tensor of ``new`` channels (see widen).

    A dimension of k latent blocks (k*M: h_a's (|y|, y), h_s's or the entropy parameters'
    (scales, means), the context's output) keeps each block's channels at the start of the
    widened block; any other dimension keeps its channels at the start.
    """
    for k in (2, 4):
        if old == k * m_old and new == k * m_new:
            j = torch.arange(old)
            return (j // m_old) * m_new + j % m_old
    return torch.arange(old)


@torch.no_grad()
def widen(model: FactorizedPrior, path: Path) -> None:
    """Start a wider model (larger N, M) as the function of a trained narrower one (Net2Net-style).

    Every tensor of the narrow checkpoint is copied into the leading channels of
    the wide one (channel_map). The wide layers' extra units keep their random
    initialisation but are cut off from the narrow model's units: a weight from
    a new input to an old output is 0, and a GDN normalises an old channel by
    old channels only. So the wide model starts computing the narrow model's
    picture at the narrow model's rate: the new latent channels of y and z start at
    0 (their analysis rows are 0), coded with the least scale (the rows of the layer
    that predicts their scales and means are 0, the scale biases ``SCALE_BOUND``) and
    gains at the mean of the old channels' gains; training opens them.
    """
    old = read_checkpoint(path)[0]
    own = model.state_dict()
    m_old, m_new = old["g_a.6.weight"].shape[0], model.m
    transposed = {name for name, mod in model.named_modules() if isinstance(mod, nn.ConvTranspose2d)}
    state = {}
    for key, w_old in old.items():
        w = own[key].clone()
        if key in ("density.target", "context.mask", "gains.lambdas"):
            continue
        if key.startswith("gains."):  # (levels, channels): new channels at the mean gain
            w[:] = w_old.mean(1, keepdim=True)
            w[:, : w_old.shape[1]] = w_old
        elif key.endswith((".weight", "gamma.p")):  # (out, in) (ConvTranspose2d: (in, out))
            o, i = (1, 0) if key.rsplit(".", 1)[0] in transposed else (0, 1)
            o_map = channel_map(w_old.shape[o], w.shape[o], m_old, m_new)
            i_map = channel_map(w_old.shape[i], w.shape[i], m_old, m_new)
            wo = w.transpose(0, 1) if o == 1 else w  # a view with outputs first
            wo_old = w_old.transpose(0, 1) if o == 1 else w_old
            cut = NonNegative.pedestal**0.5 if key.endswith("gamma.p") else 0.0  # p of a zero gamma
            wo[o_map] = cut
            wo[o_map[:, None], i_map[None, :]] = wo_old
        else:  # biases, GDN beta, density parameters: per channel, first dimension
            w[channel_map(w_old.shape[0], w.shape[0], m_old, m_new)] = w_old
        state[key] = w
    # the layers whose new outputs are new latent channels (y, z) or their scales and means
    last = {"g_a.6": m_new, "h_a.4": model.n}
    if isinstance(model, JointAutoregressive):
        last["entropy_parameters.4"] = 2 * m_new
    elif isinstance(model, ScaleHyperprior | MeanScaleHyperprior):
        last["h_s.4"] = 2 * m_new if isinstance(model, MeanScaleHyperprior) else m_new
    for name, size in last.items():
        if f"{name}.weight" not in state:
            continue
        kept = torch.zeros(size, dtype=torch.bool)
        kept[channel_map(old[f"{name}.bias"].shape[0], size, m_old, m_new)] = True
        state[f"{name}.weight"][~kept] = 0
        state[f"{name}.bias"][~kept] = 0
        if name != "g_a.6" and name != "h_a.4":
            scales = torch.zeros(size, dtype=torch.bool)
            scales[:m_new] = True
            state[f"{name}.bias"][~kept & scales] = SCALE_BOUND
    model.load_state_dict(state, strict=False)


# ---------------------------------------------------------------------------
# Evaluation on Kodak (estimated rate from the likelihoods, rounded latents)


@torch.no_grad()
def evaluate(model: FactorizedPrior, folder: Path, limit: int = 24, level=None) -> tuple[float, float]:
    bpps, psnrs = [], []
    level = None if level is None else torch.tensor([level])
    for f in sorted(folder.glob("*.png"))[:limit]:
        x = torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        bits, x_hat = model.code(x, level)
        x_hat = x_hat.clamp(0, 1)
        mse = torch.mean((torch.round(x_hat * 255) - x * 255) ** 2).item()
        bpps.append(bits / (x.shape[2] * x.shape[3]))
        psnrs.append(10 * math.log10(255**2 / mse))
    return float(np.mean(bpps)), float(np.mean(psnrs))


# ---------------------------------------------------------------------------


def lr_at(it: int, args) -> float:
    """Constant learning rate, then a cosine decay over the last ``decay`` fraction."""
    start = int(args.iters * (1 - args.decay))
    if it < start:
        return args.lr
    t = (it - start) / max(1, args.iters - start)
    return args.lr_min + 0.5 * (args.lr - args.lr_min) * (1 + math.cos(math.pi * min(1.0, t)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--kodak", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--arch", choices=sorted(ARCHITECTURES), default="factorized")
    ap.add_argument("--out", type=Path, help="checkpoint (default training/ARCH.safetensors)")
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--M", type=int, default=96)
    ap.add_argument("--lmbda", type=float, default=0.013)
    ap.add_argument("--ladder", action="store_true", help="a variable-rate model: one gain vector per quality "
                    "level, lambdas QUALITY_LAMBDAS, each sample of a batch at a random level (see Gains)")
    ap.add_argument("--iters", type=int, default=200_000, help="planned total iterations (sets the lr decay)")
    ap.add_argument("--stop-after", type=float, default=float("inf"), help="wall seconds for this run")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-min", type=float, default=5e-5)
    ap.add_argument("--decay", type=float, default=0.2, help="fraction of --iters spent decaying lr")
    ap.add_argument("--small-patch-iters", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init-from", type=Path, help="warm start a new run from another model's checkpoint "
                    "(tensors of the same name and shape, e.g. g_a/g_s of the factorized model)")
    ap.add_argument("--nest-from", type=Path, help="start a new mean-scale or joint run as the function of a "
                    "trained scale hyperprior's checkpoint (see nest)")
    ap.add_argument("--widen-from", type=Path, help="start a wider model (--N, --M) of the same architecture as "
                    "the function of a trained narrower one's checkpoint (see widen)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (fast only on CPUs with AVX512-BF16/AMX)")
    ap.add_argument("--checkpoint-seconds", type=float, default=600)
    ap.add_argument("--eval-images", type=int, default=8, help="Kodak images evaluated at each checkpoint")
    args = ap.parse_args(argv)

    args.out = args.out or Path(f"training/{args.arch}.safetensors")
    torch.set_num_threads(args.threads)
    model = ARCHITECTURES[args.arch](args.N, args.M)
    model.bf16 = args.bf16
    lambdas = QUALITY_LAMBDAS if args.ladder else (args.lmbda,)
    if args.ladder:
        model.gains = Gains(lambdas, args.M, args.N, reference=args.lmbda)
    meta: dict[str, Any] = {"iteration": 0, "wall_seconds": 0.0, "history": []}
    if args.out.exists():
        meta.update(load_checkpoint(model, args.out))
        print(f"resumed {args.out} at iteration {meta['iteration']}", flush=True)
    elif args.nest_from:
        if not isinstance(model, MeanScaleHyperprior):
            raise SystemExit("--nest-from starts a mean-scale or joint model")
        nest(model, args.nest_from)
        meta["warm_start"] = {"nested_from": str(args.nest_from), "source": source_summary(args.nest_from)}
        print(f"nested in the hyperprior {args.nest_from}", flush=True)
    elif args.widen_from:
        widen(model, args.widen_from)
        meta["warm_start"] = {"widened_from": str(args.widen_from), "source": source_summary(args.widen_from)}
        print(f"widened from {args.widen_from}", flush=True)
    elif args.init_from:
        taken = warm_start(model, args.init_from)
        meta["warm_start"] = {"from": str(args.init_from), "tensors": len(taken),
                              "modules": sorted({k.split(".")[0] for k in taken}),
                              "source": source_summary(args.init_from)}
        print(f"warm start from {args.init_from}: {len(taken)} tensors {meta['warm_start']['modules']}", flush=True)
    it0 = meta["iteration"]
    gen = torch.Generator().manual_seed(args.seed * 1_000_003 + it0)
    torch.manual_seed(args.seed * 7919 + it0)

    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main_params, lr=args.lr)
    aux_opt = torch.optim.Adam([d.quantiles for d in model.densities()], lr=1e-3)
    data = load_crops(args.data)
    print(f"{len(data)} crops; N={args.N} M={args.M} lambdas={lambdas}", flush=True)
    eval_levels = (0, 3, len(lambdas) - 1) if args.ladder else (None,)

    t_start = time.time()
    t_ckpt = t_start
    run_loss = []
    it = it0
    while it < args.iters and time.time() - t_start < args.stop_after:
        small = it < args.small_patch_iters
        x = batch(data, 16 if small else 8, 64 if small else 128, gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(it, args)
        level = torch.randint(len(lambdas), (x.shape[0],), generator=gen) if args.ladder else None
        lmbda = torch.tensor(lambdas)[level] if args.ladder else torch.tensor(args.lmbda)
        x_hat, liks = model(x, level)
        bits = torch.stack([-torch.log2(lik).sum((1, 2, 3)) for lik in liks]).sum(0)
        bpps = bits / (x.shape[2] * x.shape[3])  # per sample
        mses = ((x_hat - x) ** 2).mean((1, 2, 3))
        loss = (lmbda * 255**2 * mses + bpps).mean()
        bpp, mse = bpps.mean(), mses.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main_params, 1.0)
        opt.step()
        aux = sum(d.aux_loss() for d in model.densities())
        aux_opt.zero_grad(set_to_none=True)
        aux.backward()
        aux_opt.step()
        run_loss.append((loss.item(), bpp.item(), 10 * math.log10(1 / max(mse.item(), 1e-10))))
        it += 1
        if it % 200 == 0:
            mean_loss, b, p = np.mean(run_loss, axis=0)
            run_loss = []
            rate = (time.time() - t_start) / (it - it0)
            print(f"it {it} loss {mean_loss:.4f} bpp {b:.4f} psnr {p:.2f} lr {lr_at(it, args):.2e} {rate:.3f}s/it",
                  flush=True)
        last = it >= args.iters or time.time() - t_start >= args.stop_after  # the loop ends: save it
        if last or time.time() - t_ckpt > args.checkpoint_seconds:
            model.eval()
            figures: list[tuple[int | None, float, float]] = []
            for lv in eval_levels:
                kb, kp = evaluate(model, args.kodak, args.eval_images, lv) if args.kodak.exists() else (math.nan,) * 2
                figures.append((lv, kb, kp))
            model.train()
            now = time.time()
            meta["wall_seconds"] += now - t_ckpt
            t_ckpt = now
            meta["iteration"] = it
            for lv, kb, kp in figures:
                meta["history"].append({"iteration": it, "kodak_images": args.eval_images,
                                        **({} if lv is None else {"level": lv}),
                                        "kodak_bpp": round(kb, 4), "kodak_psnr": round(kp, 3),
                                        "wall_seconds": round(meta["wall_seconds"])})
            meta["record"] = {"arch": args.arch, "N": args.N, "M": args.M, "lambda": args.lmbda, "seed": args.seed,
                              "lambdas": list(lambdas),
                              "lr": args.lr, "lr_min": args.lr_min, "iters_planned": args.iters,
                              "decay": args.decay, "small_patch_iters": args.small_patch_iters,
                              "data": str(args.data), "threads": args.threads, "bf16": args.bf16,
                              "mean_shift": MEAN_SHIFT if args.arch in MEAN_ARCHITECTURES else 0}
            save_checkpoint(model, args.out, meta)
            for lv, kb, kp in figures:
                print(f"checkpoint it {it} level {lv}: kodak[:{args.eval_images}] (float, estimated) "
                      f"{kb:.4f} bpp {kp:.2f} dB", flush=True)


if __name__ == "__main__":
    main()
