"""The bit-width bounds of spec chapter 5 are reached, not only respected (refcodec.conformance.models.bound_model).

With every latent and hyper-latent at -32768, the bound model's accumulators reach -(2^47 - 1)
exactly in every convolution (+(2^47 - 1) in the first ReLU layer of the hyperprior's h_s), every
IGDN norm is 2^53 - 1, and both decoders still agree: the exactness argument of the fast path
(float64 sums below 2^53) is tested at its edge.
"""

import numpy as np
import pytest

from refcodec import decode
from refcodec.conformance.models import bound_model
from refcodec.decoder import layers
from refcodec.decoder.decoding import stages
from refcodec.decoder.model import ACC_BOUND, NORM_BOUND, load_model
from refcodec.encoder.encode import encode_latents

ARCHS = ["factorized", "hyperprior", "mean-scale", "joint"]


def _extremes(x, group_layers):
    """(largest |accumulator| or IGDN norm, per layer) of ``group_layers`` run on ``x``."""
    found = []
    for layer in group_layers:
        if layer.kind == "igdn":
            found.append(int(layers.igdn_norm(x, layer.gamma, layer.beta).max()))
        else:
            transform = layers.conv_transpose if layer.kind == "deconv" else layers.conv
            found.append(int(np.abs(transform(x, layer.weight, layer.bias)).max()))
        x = layers.apply_layer(x, layer)
    return found, x


@pytest.mark.parametrize("arch", ARCHS)
def test_bound_model_reaches_every_bound(arch, tmp_path):
    data = bound_model(arch, 2, 3)
    model = load_model(data)
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    y = np.full((3, 9, 9), -32768)
    z = None if arch == "factorized" else np.full((2, 3, 3), -32768)
    stream = encode_latents(y, model, 144, 144, z_hat=z, impl="reference")
    got = stages(stream, [path])
    assert np.array_equal(got["y_hat"], y)
    found, _ = _extremes(y, model.synthesis)
    assert found == [ACC_BOUND, NORM_BOUND] * 3 + [ACC_BOUND]
    if arch != "factorized":
        found, _ = _extremes(z, model.hyper_synthesis)
        assert found[0] == ACC_BOUND and (arch == "hyperprior" or found == [ACC_BOUND] * 3)
        limit = 32767 if arch == "hyperprior" else -32768
        assert np.all(got["hyper_synthesis"] == limit)
        assert np.all(got["table_index"] == (model.y_table.rows - 1 if arch == "hyperprior" else 0))
    if arch == "joint":
        ctx = layers.conv(y, model.context[0].weight, model.context[0].bias)
        assert int(np.abs(ctx).max()) == ACC_BOUND and np.all(got["mean"] == -32768)
        v = np.concatenate([layers.apply_layer(y, model.context[0]), got["hyper_synthesis"]])
        assert _extremes(v, model.entropy_parameters)[0] == [ACC_BOUND] * 3
    assert np.array_equal(decode(stream, [path], impl="fast"), decode(stream, [path], impl="reference"))
