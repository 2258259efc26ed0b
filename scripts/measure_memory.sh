#!/usr/bin/env bash
# Peak RSS of `talkinghead generate` against the length of the speech (issue 17: memory must be flat).
#
#   scripts/measure_memory.sh CLIP.wav [SECONDS ...]      (default lengths: 30 600 3600)
#
# Makes each length by repeating CLIP (any speech file) into /tmp, runs the command under
# /usr/bin/time -v (Debian package `time`) at --size 288 --fps 10 (memory does not depend on the
# frame count; a small frame makes the hour-long run take minutes), and prints one line per length.
set -euo pipefail
clip=${1:?usage: scripts/measure_memory.sh CLIP.wav [SECONDS ...]}
shift
lengths=("${@:-30 600 3600}")
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
work=$(mktemp -d /tmp/talkinghead-memory.XXXXXX)
trap 'rm -rf "$work"' EXIT
for seconds in ${lengths[@]}; do
  "$python" - "$clip" "$seconds" "$work/speech.wav" <<'EOF'
import sys, wave
import numpy as np
from talkinghead.io import load_audio
clip = load_audio(sys.argv[1])
n = int(float(sys.argv[2]) * 16000)
pcm = (np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes()
with wave.open(sys.argv[3], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    for start in range(0, n, len(clip)):
        w.writeframes(pcm[: 2 * min(len(clip), n - start)])
EOF
  GLOG_minloglevel=2 /usr/bin/time -v "$python" -m talkinghead generate --image "$root/talkinghead/assets/astronaut.png" \
    --audio "$work/speech.wav" --out "$work/out.mp4" --size 288 --fps 10 --quiet 2> "$work/time.txt"
  peak=$(grep "Maximum resident" "$work/time.txt" | awk '{print $NF}')
  wall=$(grep "Elapsed (wall" "$work/time.txt" | awk '{print $NF}')
  echo "$seconds s of speech: peak RSS $((peak / 1024)) MB, wall $wall"
done
