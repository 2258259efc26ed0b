"""The bad-input corpus (scripts/check_bad_inputs.py, issue 17) as a slow test: over 100 generated cases
across the command (generate, data prepare, train motion) and the server, none may print a traceback, write garbage, modify an input or leave
a file behind, and every one must be refused with one clear line (or, for a valid input, succeed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_bad_inputs.py"
MIN_CASES = 100
CORPUS_TIMEOUT_S = 3600


@pytest.mark.slow
def test_bad_input_corpus(tmp_path):
    report = tmp_path / "cases.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--no-report", "--json", str(report)],
                         capture_output=True, text=True, timeout=CORPUS_TIMEOUT_S,
                         env=dict(os.environ, GLOG_minloglevel="2"))
    assert report.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    cases = json.loads(report.read_text())
    assert len(cases) >= MIN_CASES and {c["group"] for c in cases} == {"cli", "data", "server"}
    for flag in ("traceback", "garbage", "input_modified"):
        assert [c["name"] for c in cases if c[flag]] == [], flag
    assert [c["name"] for c in cases if c["left_behind"]] == []
    assert [f"{c['name']}: {c['message']}" for c in cases if not c["passed"]] == []
