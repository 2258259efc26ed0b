#!/usr/bin/env bash
# Create .venv with Python 3.11 and install talkinghead (editable) with pinned versions.
# Usage: scripts/install.sh [extra]   (extra: test)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
spec="."
if [ -n "${1:-}" ]; then spec=".[$1]"; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e "$spec"
# The person segmenter for the background plate: one file taken from the mediapipe 0.10.21 wheel on PyPI
# (that old wheel is not installed). Optional: without it the background near a moving head stretches.
.venv/bin/python -m talkinghead.face.segmentation --install 2>/dev/null \
  || echo "note: the person segmenter was not installed; the renderer works without it (see README)"
# Compile the package's bytecode now: with PYTHONDONTWRITEBYTECODE set (as on some machines) Python would
# otherwise compile every module again on each run, about 0.1 s of every start-up.
.venv/bin/python -m compileall -q talkinghead >/dev/null
