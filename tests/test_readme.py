"""The README's quick start works: every command of its "Quick start" block, through main(), in a folder
holding the sample photo as photo.png (issue 14)."""

import contextlib
import io
import re
import shlex
import shutil
from pathlib import Path

import pytest

from refcodec.cli import main

REPO = Path(__file__).resolve().parent.parent


def quick_start() -> list:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def test_quick_start_block_is_there():
    commands = quick_start()
    assert [c[0] for c in commands] == ["refcodec"] * len(commands)
    assert {c[1] for c in commands} >= {"--version", "models", "encode", "decode", "info", "demo", "eval"}


def test_readme_install_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pip install . && refcodec demo" in text and "pip install -e '.[test]' && python -m pytest" in text
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -q ." in ci and "refcodec demo" in ci and "refcodec models" in ci


def test_quick_start_commands_work(tmp_path, monkeypatch):
    shutil.copy(REPO / "refcodec" / "data" / "sample.png", tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    for command in quick_start():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(command[1:])
            except SystemExit as e:  # --version
                code = e.code
        assert code == 0, (command, err.getvalue())
        assert "Traceback" not in err.getvalue()
        if command[1] != "--version":
            continue
        assert out.getvalue().startswith("refcodec ")
    assert (tmp_path / "out.png").exists() and (tmp_path / "out.webp").exists()
    assert sorted(p.name for p in (tmp_path / "decoded").iterdir()) == ["p.png", "photo.png"]
    assert (tmp_path / "results.json").exists()


@pytest.mark.parametrize("command", ["encode", "decode", "info", "eval", "conform"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0 and command in capsys.readouterr().out
