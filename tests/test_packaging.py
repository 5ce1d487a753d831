"""Packaging that survives a fresh machine (issue 14): Numba's cache outside the installed package, complete
metadata, the right setuptools floor, no exact pins in extras, every data file in the wheel, and a missing
extra reported in one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "refcodec"

CACHE_PATHS = """
import sys
if sys.argv[1] == "numba-first":
    import numba  # imported before refcodec: its config is already read
import refcodec.fast.rans as r
from numba.core.dispatcher import Dispatcher
dispatchers = [v for v in vars(r).values() if isinstance(v, Dispatcher)]
assert dispatchers
for d in dispatchers:
    print(d._cache._cache_path)
"""


def cache_paths(tmp_path, mode: str, **env) -> set:
    environ = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    environ.update(env)
    p = subprocess.run([sys.executable, "-c", CACHE_PATHS, mode], capture_output=True, text=True, env=environ,
                       cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    return set(p.stdout.split())


def test_numba_cache_outside_the_package(tmp_path):
    """No cache file inside site-packages: pip uninstall would leave it, and the folder would shadow a later
    editable install. The per-user folder, unless the user named one."""
    for mode in ("refcodec-first", "numba-first"):
        paths = cache_paths(tmp_path, mode, XDG_CACHE_HOME=str(tmp_path / "xdg"))
        assert paths and all(p.startswith(str(tmp_path / "xdg" / "refcodec" / "numba")) for p in paths), paths
        assert not any(p.startswith(str(PACKAGE)) for p in paths)
    paths = cache_paths(tmp_path, "refcodec-first", NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    assert all(p.startswith(str(tmp_path / "mine")) for p in paths), paths
    paths = cache_paths(tmp_path, "refcodec-first", HOME=str(tmp_path / "home"))
    assert all(p.startswith(str(tmp_path / "home" / ".cache" / "refcodec" / "numba")) for p in paths), paths


FAKE_TORCH = "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"


def test_training_without_torch_ends_in_one_line(tmp_path):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text(FAKE_TORCH)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    p = subprocess.run([sys.executable, "-m", "refcodec.encoder.train", "--help"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr == "refcodec: needs the train extra: pip install 'refcodec[train]' (no module named 'torch')\n"


def test_other_errors_keep_their_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "refcodec.conformance.vectors", "--no-such-option"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "needs the" not in p.stderr


@pytest.fixture(scope="module")
def project():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_setuptools_floor_fits_the_license_expression(project):
    """An SPDX license expression (license = "Apache-2.0", PEP 639) needs setuptools 77 or later."""
    assert isinstance(project["project"]["license"], str)
    (requirement,) = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    floor = tuple(int(x) for x in requirement.split(">=")[1].split(",")[0].split("."))
    assert floor >= (77,)


def test_metadata_is_complete(project):
    meta = project["project"]
    assert meta["authors"] == [{"name": "refcodec developers"}]
    assert any(c.startswith("Programming Language :: Python :: 3") for c in meta["classifiers"])
    assert not any(c.startswith("License") for c in meta["classifiers"])  # PEP 639: the expression says it
    assert "tqdm" in " ".join(meta["dependencies"])
    for extra, requirements in meta["optional-dependencies"].items():
        for r in requirements:
            assert "==" not in r and "===" not in r, f"exact pin in the {extra} extra: {r}"


def test_every_data_file_is_package_data(project):
    """Every file under refcodec/ that is not Python source is matched by package-data (so it is in the wheel):
    the models, their Kodak figures, the sample photo and its attribution."""
    import fnmatch

    patterns = project["tool"]["setuptools"]["package-data"]["refcodec"]
    data = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
            and not any(part.endswith(".egg-info") for part in p.parts)]
    assert "data/README.md" in data and "data/sample.png" in data
    for name in data:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), f"{name} is not package data"
