"""refcodec.decoder is the bottom of the import graph: the reference decoder needs NumPy alone.

Its modules import nothing from refcodec.fast, refcodec.encoder, refcodec.conformance or the CLI, and
with Numba (and llvmlite) made unimportable, ``impl="reference"`` still decodes the golden vectors.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DECODER = REPO / "refcodec" / "decoder"
ABOVE = ("refcodec.fast", "refcodec.encoder", "refcodec.conformance", "refcodec.cli", "refcodec.image")
EXTERNAL = ("numba", "llvmlite", "PIL")


def imported_modules(path: Path) -> set:
    """Every module an ``import`` or ``from ... import`` statement of ``path`` names (relative ones resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "refcodec.decoder" if node.level == 1 else "refcodec" if node.level == 2 else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_decoder_imports_nothing_above_it():
    for path in sorted(DECODER.glob("*.py")):
        bad = sorted(m for m in imported_modules(path) if m.startswith(ABOVE) or m.split(".")[0] in EXTERNAL)
        assert not bad, f"{path.name} imports {bad}"


BLOCKED_DECODE = """
import hashlib, importlib.abc, json, sys
from pathlib import Path

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("numba", "llvmlite"):
            raise ImportError(f"{name} is blocked for this test")

sys.meta_path.insert(0, Block())
from refcodec.decoder.decoding import decode_stream
from refcodec.decoder.errors import RefcodecError

vectors = Path(sys.argv[1])
for name in sys.argv[2:]:
    manifest = json.loads((vectors / name / "manifest.json").read_text())
    stream = (vectors / name / "stream.rcdc").read_bytes()
    try:
        pixels = decode_stream(stream, [vectors / manifest["model"]], impl="reference")
        got = hashlib.sha256(pixels.tobytes()).hexdigest()
    except RefcodecError as e:
        got = type(e).__name__
    want = manifest.get("pixels_sha256") or manifest["expected_error"]
    assert got == want, (name, got, want)
assert not any(m.split(".")[0] in ("numba", "llvmlite") for m in sys.modules), "numba was imported"
print("decoded", len(sys.argv) - 2)
"""


def test_reference_decoder_without_numba():
    """One vector of each architecture and a negative one, decoded with numba unimportable."""
    names = ["photo-200x200", "hyperprior-photo-200x200", "mean-scale-latents-escapes", "joint-size-65x17",
             "neg-bad-magic"]
    index = {v["name"] for v in json.loads((REPO / "vectors" / "index.json").read_text())["vectors"]}
    assert set(names) <= index
    result = subprocess.run([sys.executable, "-c", BLOCKED_DECODE, str(REPO / "vectors"), *names],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"decoded {len(names)}"
