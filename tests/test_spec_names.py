"""Every procedure of the spec has exactly one implementation in refcodec.decoder, named after it and
marked with its clause (refcodec.decoder.conventions.clause); no function is marked for a procedure the
spec does not define. This keeps the reference decoder readable against the spec, name for name."""

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import refcodec.decoder

SPEC = Path(__file__).resolve().parent.parent / "spec"
HEADING = re.compile(r"^##+ (\d+(?:\.\d+)+) ")


def snake(name: str) -> str:
    """RansDecodeSymbol -> rans_decode_symbol, ReadLE -> read_le, Round2 -> round2."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def spec_procedures() -> dict:
    """name -> clause of every top-level ``def`` in the pseudocode of the normative chapters."""
    found: dict = {}
    for path in sorted(SPEC.glob("[0-9][0-9]-*.md")):
        clause, block = None, None
        for line in path.read_text(encoding="utf-8").splitlines():
            if block is None and (m := HEADING.match(line)):
                clause = m.group(1)
            elif line.startswith("```python"):
                block = []
            elif line.startswith("```") and block is not None:
                for node in ast.parse("\n".join(block)).body:
                    if isinstance(node, ast.FunctionDef):
                        assert node.name not in found, f"{node.name} is defined twice in spec/"
                        found[node.name] = clause
                block = None
            elif block is not None:
                block.append(line)
    return found


def marked_functions() -> dict:
    """snake_case name -> [(module, clause)] of every function in refcodec.decoder marked with ``clause``."""
    found: dict = {}
    for info in pkgutil.iter_modules(refcodec.decoder.__path__):
        module = importlib.import_module(f"refcodec.decoder.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and hasattr(fn, "spec_clause"):
                found.setdefault(name, []).append((module.__name__, fn.spec_clause))
    return found


def test_every_spec_procedure_has_one_marked_implementation():
    procedures, marked = spec_procedures(), marked_functions()
    assert len(procedures) > 50
    problems = []
    for name, clause in procedures.items():
        impls = marked.get(snake(name), [])
        if len(impls) != 1:
            problems.append(f"{name} (§{clause}): {len(impls)} marked implementations {impls}")
        elif impls[0][1] != clause:
            problems.append(f"{name} is in §{clause}, but {impls[0][0]}.{snake(name)} is marked §{impls[0][1]}")
    assert not problems, "\n".join(problems)


def test_no_function_is_marked_for_a_procedure_the_spec_lacks():
    names = {snake(name) for name in spec_procedures()}
    assert sorted(set(marked_functions()) - names) == []
