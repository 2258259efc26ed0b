#!/usr/bin/env bash
# Install talkinghead into .venv (if needed) and make demo.mp4 from the bundled portrait and speech.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/talkinghead demo --out "${1:-demo.mp4}"
