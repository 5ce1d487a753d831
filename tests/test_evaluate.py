"""refcodec eval (issue 14): MS-SSIM as pytorch-msssim and CompressAI compute it, and the dataset evaluation
of compressai.utils.eval_model: per picture and mean per quality, JSON in CompressAI's layout."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refcodec.evaluate import MS_SSIM_WEIGHTS, gaussian_window, ms_ssim

SAMPLE = Path(__file__).resolve().parent.parent / "refcodec" / "data" / "sample.png"


def test_identical_pictures_score_one():
    a = np.random.default_rng(1).integers(0, 256, (170, 201, 3), dtype=np.uint8)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_constant_pictures_by_hand():
    """Two constant pictures of 256 x 256 (even at every scale, so pooling keeps them constant): every
    variance is 0, so each contrast-structure term is C2 / C2 = 1 and only the last scale's luminance term
    l = (2ab + C1) / (a^2 + b^2 + C1) remains, to the power 0.1333. (Up to the float32 taps of the window,
    which sum to 1 within 1e-7, as in pytorch-msssim.)"""
    a, b = 100.0, 120.0
    c1 = (0.01 * 255) ** 2
    want = ((2 * a * b + c1) / (a * a + b * b + c1)) ** 0.1333
    x, y = np.full((256, 256, 3), a, np.uint8), np.full((256, 256, 3), b, np.uint8)
    assert ms_ssim(x, y) == pytest.approx(want, rel=1e-5)
    assert want == pytest.approx(0.997800, abs=1e-6)  # 24006.5025 / 24406.5025 = 0.983611, to the 0.1333


def test_agrees_with_pytorch_msssim():
    """The value pytorch_msssim.ms_ssim(X, Y, data_range=255) gives (pytorch-msssim 1.0.0, float64 tensors)
    for this pair: an odd size, so the zero-padded pooling of odd sizes counts."""
    y, x = np.mgrid[0:200, 0:181]
    a = np.stack([(x + y) % 256, (2 * x) % 256, (3 * y) % 256], axis=-1).astype(np.uint8)
    noise = ((x * 7 + y * 13) % 21 - 10)[..., None]
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    assert ms_ssim(a, b) == pytest.approx(0.9753799535547771, abs=1e-7)


def test_window_and_weights():
    g = gaussian_window()
    assert len(g) == 11 and g.sum() == pytest.approx(1.0) and np.argmax(g) == 5 and g[0] == pytest.approx(g[10])
    assert g[5] / g[4] == pytest.approx(np.exp(1 / (2 * 1.5**2)), rel=1e-6)
    assert MS_SSIM_WEIGHTS == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def test_small_pictures_have_no_ms_ssim():
    a = np.zeros((160, 300, 3), np.uint8)
    assert ms_ssim(a, a) is None
    assert ms_ssim(np.zeros((161, 161, 3), np.uint8), np.zeros((161, 161, 3), np.uint8)) == pytest.approx(1.0)


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    Image.open(SAMPLE).save(folder / "a.png")
    Image.open(SAMPLE).transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((0, 0, 180, 170)).save(folder / "b.png")
    Image.open(SAMPLE).crop((0, 0, 48, 32)).save(folder / "c.png")
    return folder


def test_eval_writes_compressai_json(dataset, tmp_path):
    from test_cli import run

    out = tmp_path / "r.json"
    code, text, err = run("eval", dataset, "--json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["name"] == "refcodec-factorized" and doc["images"] == 3
    results = doc["results"]
    assert results["quality"] == [None]
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"):
        assert len(results[key]) == 1 and results[key][0] > 0
    rows = doc["per_image"]
    assert [Path(r["image"]).name for r in rows] == ["a.png", "b.png", "c.png"]
    assert results["bpp"][0] == pytest.approx(np.mean([r["bpp"] for r in rows]))
    assert rows[2]["ms-ssim-rgb"] is None  # 48 x 32
    assert results["ms-ssim-rgb"][0] == pytest.approx(np.mean([r["ms-ssim-rgb"] for r in rows[:2]]))
    import refcodec

    a = rows[0]
    stream, recon = refcodec.encode(SAMPLE, return_reconstruction=True)
    assert a["bytes"] == len(stream) and a["bpp"] == 8 * len(stream) / 40000
    assert a["ms-ssim-rgb"] == pytest.approx(ms_ssim(np.asarray(Image.open(SAMPLE)), recon))
    assert "bpp" in text.splitlines()[0]


def test_eval_in_worker_processes_gives_the_same_measures(dataset, tmp_path):
    from test_cli import run

    (dataset / "a.png").unlink()
    one, two = tmp_path / "1.json", tmp_path / "2.json"
    assert run("eval", dataset, "--json", one, "-q")[0] == 0
    code, text, _ = run("eval", dataset, "--json", two, "-j", "2", "-q")
    assert code == 0 and text == ""

    def measures(path):
        return [{k: r[k] for k in ("image", "bytes", "bpp", "psnr-rgb", "ms-ssim-rgb")}
                for r in json.loads(path.read_text())["per_image"]]

    assert measures(one) == measures(two)


def test_eval_checks_before_any_work(dataset, tmp_path, monkeypatch):
    from test_cli import run

    code, _, err = run("eval", dataset, "--json", tmp_path / "missing" / "r.json")
    assert code == 1 and err.count("\n") == 1 and "missing" in err
    code, _, err = run("eval", dataset, "--quality", "2")
    assert code == 1 and "single rate" in err
    code, _, err = run("eval", tmp_path / "nothing-here")
    assert code == 1 and err.count("\n") == 1


def test_eval_plot(dataset, tmp_path):
    from test_cli import run

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        code, _, err = run("eval", dataset, "--plot", tmp_path / "p.png")
        assert code == 1 and err.count("\n") == 1 and "refcodec[bench]" in err
        return
    code, _, err = run("eval", dataset, "--plot", tmp_path / "p.png")
    assert code == 0, err
    assert Image.open(tmp_path / "p.png").size[0] > 100


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import sys

    from refcodec.cli import Settings, progress

    items = [1, 2, 3]
    assert progress(items, 3, Settings(), "x") is items  # stderr is not a terminal under pytest
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress(items, 3, Settings(quiet=True), "x") is items
    bar = progress(items, 3, Settings(), "x")
    assert bar is not items and list(bar) == items


def test_eval_of_a_model_file_with_quality_levels(dataset, tmp_path):
    """A model that is not shipped: the decoder is given its file; every level by default, or those named."""
    from test_cli import run

    from refcodec.decoder.model import parse_container, shipped_model_paths
    from refcodec.encoder.export import save_safetensors

    meta, tensors = parse_container(shipped_model_paths()["factorized"].read_bytes())
    tensors, m = dict(tensors), int(meta["M"])
    tensors["quality.y_gain"] = np.array([[1 << 16] * m, [1 << 17] * m], np.int32)
    tensors["encoder.quality.y_gain"] = np.array([[1.0] * m, [0.5] * m], np.float32)
    model = tmp_path / "levels.safetensors"
    model.write_bytes(save_safetensors(tensors, meta))
    for name in ("a.png", "b.png"):
        (dataset / name).unlink()
    out = tmp_path / "r.json"
    code, text, err = run("eval", dataset, "--model", model, "--json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["name"] == "refcodec-levels" and doc["results"]["quality"] == [1, 2]
    assert doc["results"]["bpp"][1] < doc["results"]["bpp"][0]
    assert [line.split()[0] for line in text.splitlines()[1:]] == ["1", "2"]
    assert run("eval", dataset, "--model", model, "--quality", "2", "--json", out)[0] == 0
    assert json.loads(out.read_text())["results"]["quality"] == [2]
