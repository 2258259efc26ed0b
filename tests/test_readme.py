"""The README's commands: every one is run by scripts/check_readme.py (a slow test here runs it), or is
skipped there with a reason; and the Python example uses only public names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import check_readme  # noqa: E402


def test_every_readme_command_is_run_or_skipped_with_a_reason():
    commands = check_readme.readme_commands()
    assert len(commands) >= 12
    for command in commands:
        runnable = command.startswith(("talkinghead ", "curl "))
        assert runnable or command in check_readme.SKIPPED, f"check_readme.py cannot run {command!r}"
    stale = set(check_readme.SKIPPED) - set(commands)
    assert not stale, f"SKIPPED names commands the README no longer has: {stale}"


def test_the_readme_uses_the_activated_venv_not_venv_paths():
    text = (REPO / "README.md").read_text()
    assert ".venv/bin/talkinghead" not in text
    assert "source .venv/bin/activate" in text


def test_the_python_example_imports_only_public_names():
    import talkinghead

    example = check_readme.readme_blocks("python")[0]
    imported = example.split("import", 2)[1].split("\n")[0]
    for name in (n.strip() for n in imported.split(",")):
        assert name in talkinghead.__all__, name


@pytest.mark.slow
def test_every_readme_command_runs():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "check_readme.py")], capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
