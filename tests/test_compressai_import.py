"""Importing CompressAI checkpoints (Annex A.3.3; refcodec.encoder.compressai) and the suite of one model.

The checkpoints in tests/data/compressai are small models of CompressAI's four classes trained with
CompressAI itself (training/compressai/train.py; their record is training.json there). Reading a
checkpoint needs torch: without it these tests skip, unless REFCODEC_REQUIRE_TORCH=1 (CI), which turns
the skip into a failure.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from refcodec.decoder.errors import InputError

if os.environ.get("REFCODEC_REQUIRE_TORCH") == "1":
    import torch
else:
    torch = pytest.importorskip("torch")

from refcodec import decode
from refcodec.conformance.model_suite import generate
from refcodec.conformance.vectors import smooth_image
from refcodec.decoder.conventions import sha256
from refcodec.decoder.errors import RefcodecError
from refcodec.decoder.model import load_model, parse_container
from refcodec.encoder import compressai
from refcodec.encoder.encode import encode

DATA = Path(__file__).resolve().parent / "data" / "compressai"
ZOO = list(compressai.ARCHITECTURES)
BUFFERS = ("_quantized_cdf", "_cdf_length", "_offset")


def checkpoint(zoo: str) -> Path:
    return DATA / f"{zoo}.pth.tar"


def state_dict(zoo: str) -> dict:
    return torch.load(checkpoint(zoo), map_location="cpu", weights_only=True)["state_dict"]


def tensors(model_file: bytes) -> dict:
    """name -> bytes of every tensor of a model file (its metadata names the checkpoint file, which differs)."""
    return {k: v.tobytes() for k, v in parse_container(model_file)[1].items()}


def saved(tmp_path: Path, obj, name: str = "variant.pth.tar") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict:
    """zoo name -> path of the imported model (synthetic calibration)."""
    folder = tmp_path_factory.mktemp("imported")
    out = {}
    for zoo in ZOO:
        out[zoo] = folder / f"{zoo}.safetensors"
        out[zoo].write_bytes(compressai.import_model(checkpoint(zoo), zoo))
    return out


def test_checkpoints_are_compressai_training_runs():
    """The four checkpoints exist, with the record of the CompressAI runs that made them."""
    record = json.loads((DATA / "training.json").read_text())
    for zoo in ZOO:
        assert checkpoint(zoo).is_file() and record[zoo]["iterations"] >= 1000, zoo
        assert compressai.architecture_of(compressai.read_state_dict(checkpoint(zoo))) == zoo


@pytest.mark.parametrize("zoo", ZOO)
def test_imported_model_round_trips(imported, zoo):
    """Each class imports to a model of its architecture that encodes, and whose stream both decoders decode to
    the encoder's reconstruction; the edition-5 tensors are there exactly where CompressAI needs them."""
    model = load_model(imported[zoo].read_bytes())
    arch = compressai.ARCHITECTURES[zoo]
    assert model.architecture == arch and model.encoder
    picture = smooth_image(3, 70, 45)
    stream, reconstruction = encode(picture, imported[zoo], return_reconstruction=True)
    for impl in ("reference", "fast"):
        assert np.array_equal(decode(stream, [imported[zoo]], impl=impl), reconstruction)
    mse = np.mean((reconstruction.astype(float) - picture) ** 2)
    assert 10 * np.log10(255**2 / mse) > 18  # a trained model: far from noise
    slopes = {layer.slope for layer in model.hyper_synthesis + model.entropy_parameters}
    assert slopes == ({655} if arch in ("mean-scale", "joint") else {1024} if arch == "hyperprior" else set())
    if arch == "factorized":
        assert model.mean_shift == 4 and model.y_median.any()
    else:
        assert model.z_shift == 4 and model.z_median.any() and model.y_table.rows == 64


@pytest.mark.parametrize("zoo", ZOO)
def test_imported_tables_are_compressais(imported, zoo):
    """The entropy bottleneck's and the Gaussian conditional's CDF buffers are taken as they are (Annex A.3.3)."""
    sd = state_dict(zoo)
    model = load_model(imported[zoo].read_bytes())
    per_channel = model.y_table if zoo == "bmshj2018-factorized" else model.z_table
    tables = [("entropy_bottleneck", per_channel)] + ([] if zoo == "bmshj2018-factorized" else
                                                       [("gaussian_conditional", model.y_table)])
    for module, table in tables:
        cdf = sd[f"{module}._quantized_cdf"].numpy()
        assert np.array_equal(table.cdf[:, : cdf.shape[1]], cdf)
        assert np.array_equal(table.cdf_length, sd[f"{module}._cdf_length"].numpy())
        assert np.array_equal(table.offset, sd[f"{module}._offset"].numpy())


@pytest.mark.parametrize("zoo", ZOO)
def test_variants_of_the_checkpoint_import(tmp_path, imported, zoo):
    """Without the state_dict wrapper, with pre-1.1 bottleneck names and a DataParallel prefix: the same model.
    Without the CDF buffers: rebuilt as CompressAI's update() builds them, the same rows up to float rounding."""
    sd = state_dict(zoo)
    bare = saved(tmp_path, sd, "bare.pth.tar")
    assert tensors(compressai.import_model(bare, zoo)) == tensors(imported[zoo].read_bytes())
    legacy = {("module." + k).replace("entropy_bottleneck.matrices.", "entropy_bottleneck._matrix")
              .replace("entropy_bottleneck.biases.", "entropy_bottleneck._bias")
              .replace("entropy_bottleneck.factors.", "entropy_bottleneck._factor"): v for k, v in sd.items()}
    assert tensors(compressai.import_model(saved(tmp_path, legacy), zoo)) == tensors(imported[zoo].read_bytes())
    stripped = {k: v for k, v in sd.items() if not k.endswith(BUFFERS)}
    model = load_model(compressai.import_model(saved(tmp_path, {"state_dict": stripped}), zoo))
    with_buffers = load_model(imported[zoo].read_bytes())
    for new, old in ((model.y_table, with_buffers.y_table), (model.z_table, with_buffers.z_table)):
        if old is None:
            continue
        assert np.array_equal(new.cdf_length, old.cdf_length) and np.array_equal(new.offset, old.offset)
        assert np.abs(new.cdf.astype(np.int64) - old.cdf).max() <= 2


def test_suite_of_an_imported_model(tmp_path, imported):
    """refcodec vectors --model: every vector of the suite of an imported joint model decodes (or fails) in both
    decoders exactly as its manifest says."""
    out = tmp_path / "suite"
    count = generate(imported["mbt2018"], out)
    index = json.loads((out / "index.json").read_text())["vectors"]
    assert count == len(index) >= 14
    names = {v["name"] for v in index}
    assert {"joint-photo-200x200", "bounds-min", "bounds-max", "latents-small", "neg-y-truncated"} <= names
    for entry in index:
        manifest = json.loads((out / entry["manifest"]).read_text())
        stream = (out / entry["manifest"]).parent.joinpath("stream.rcdc").read_bytes()
        model = out / manifest["model"]
        for impl in ("reference", "fast"):
            if "expected_error" in manifest:
                with pytest.raises(RefcodecError) as e:
                    decode(stream, [model], impl=impl)
                assert type(e.value).__name__ == manifest["expected_error"]
            else:
                assert sha256(decode(stream, [model], impl=impl).tobytes()).hex() == manifest["pixels_sha256"]


def test_suite_needs_an_empty_folder(tmp_path, imported):
    (tmp_path / "x").write_text("mine")
    with pytest.raises(FileExistsError):
        generate(imported["bmshj2018-factorized"], tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


# --- bad input: one InputError naming what is wrong -------------------------------------------


def bad(tmp_path, sd_edit=None, zoo="bmshj2018-hyperprior", raw: bytes | None = None) -> str:
    if raw is not None:
        path = tmp_path / "bad.pth.tar"
        path.write_bytes(raw)
    else:
        sd = state_dict(zoo)
        sd_edit(sd)
        path = saved(tmp_path, {"state_dict": sd})
    with pytest.raises(InputError) as e:
        compressai.import_model(path, zoo)
    assert "\n" not in str(e.value) and e.value.clause == "A.3.3"
    return str(e.value)


def test_another_architecture(tmp_path):
    path = checkpoint("mbt2018")
    with pytest.raises(InputError, match="is a mbt2018 model, not bmshj2018-hyperprior"):
        compressai.import_model(path, "bmshj2018-hyperprior")


def test_not_a_checkpoint(tmp_path):
    assert "is not a PyTorch checkpoint" in bad(tmp_path, raw=b"hello, not a checkpoint\n" * 10)
    truncated = checkpoint("bmshj2018-hyperprior").read_bytes()
    assert "is not a PyTorch checkpoint" in bad(tmp_path, raw=truncated[: len(truncated) // 2])
    assert "holds no state dict" in bad(tmp_path, raw=_torch_bytes(tmp_path, [1, 2, 3]))


def _torch_bytes(tmp_path, obj) -> bytes:
    return saved(tmp_path, obj, "other.pth.tar").read_bytes()


def test_missing_and_misshapen_tensors(tmp_path):
    assert "tensor h_s.2.weight is missing" in bad(tmp_path, lambda sd: sd.pop("h_s.2.weight"))
    message = bad(tmp_path, lambda sd: sd.update({"h_a.2.weight": sd["h_a.2.weight"][:, :-1]}))
    assert "tensor h_a.2.weight has shape" in message


def test_non_finite_weights(tmp_path):
    def nan(sd):
        sd["g_s.2.weight"][0, 0, 0, 0] = float("nan")

    assert "g_s.2.weight is not finite" in bad(tmp_path, nan)


def test_weights_beyond_the_bounds(tmp_path):
    """A synthesis weight so large that no shift brings its integer form within the bounds of spec §6.4."""
    def huge(sd):
        sd["g_s.6.weight"][0, 0, 0, 0] = 1e30

    assert "cannot be made integer (synthesis.6: a weight of channel 0 exceeds 16 bits" in bad(tmp_path, huge)

    def norm(sd):
        sd["g_s.3.gamma"][0, 0] = 1e9

    assert "synthesis.3: channel 0's norm exceeds the bound of spec §6.4" in bad(tmp_path, norm)


def test_no_output_without_torch(tmp_path):
    """Without torch: one InputError, nothing written (run in a child so that torch stays importable here)."""
    import subprocess
    import sys

    out = tmp_path / "out.safetensors"
    code = ("import sys; sys.modules['torch'] = None\n"
            "from refcodec.encoder.compressai import import_model\n"
            f"import_model({str(checkpoint('mbt2018'))!r}, 'mbt2018')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "needs torch" in result.stderr and not out.exists()


# --- the command line -------------------------------------------------------------------------------------------


def cli(capsys, *args) -> tuple:
    from refcodec.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_import_and_vectors(tmp_path, capsys):
    """refcodec import compressai, then refcodec vectors --model: a model that encodes, and its suite."""
    out = tmp_path / "m.safetensors"
    code, said, _ = cli(capsys, "import", "compressai", "--arch", "mbt2018-mean", checkpoint("mbt2018-mean"), out)
    assert code == 0 and "wrote" in said and load_model(out.read_bytes()).architecture == "mean-scale"
    code, said, _ = cli(capsys, "vectors", "--model", out, tmp_path / "suite")
    assert code == 0 and (tmp_path / "suite" / "index.json").is_file()
    code, _, err = cli(capsys, "vectors", "--model", out, tmp_path / "suite")  # not an empty folder
    assert code == 1 and err.count("\n") == 1 and "not an empty folder" in err


def test_cli_bad_checkpoint_writes_nothing(tmp_path, capsys):
    """One line on stderr, exit status 1, and no output file (and an existing one is left as it was)."""
    out = tmp_path / "m.safetensors"
    code, _, err = cli(capsys, "import", "compressai", "--arch", "mbt2018", checkpoint("mbt2018-mean"), out)
    assert code == 1 and err.count("\n") == 1 and "is a mbt2018-mean model, not mbt2018" in err
    assert not out.exists()
    out.write_bytes(b"mine")
    (tmp_path / "bad.pth.tar").write_bytes(b"\x00" * 100)
    code, _, err = cli(capsys, "import", "compressai", "--arch", "mbt2018", tmp_path / "bad.pth.tar", out)
    assert code == 1 and err.count("\n") == 1 and "not a PyTorch checkpoint" in err
    assert out.read_bytes() == b"mine" and sorted(p.name for p in tmp_path.iterdir()) == ["bad.pth.tar",
                                                                                         "m.safetensors"]


def test_cli_without_torch_is_one_line(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m.safetensors"
    code = ("import sys; sys.modules['torch'] = None\n"
            "from refcodec.cli import main\n"
            f"sys.exit(main(['import', 'compressai', '--arch', 'mbt2018', {str(checkpoint('mbt2018'))!r}, "
            f"{str(out)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "needs torch" in result.stderr
    assert not out.exists()
