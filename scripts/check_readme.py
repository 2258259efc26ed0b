"""Run every command of README.md, as written, in a scratch folder, and say which ones failed.

    python scripts/check_readme.py [--keep DIR]

The README's placeholder inputs are made first from the bundled demo assets: face.jpg (the astronaut),
speech.wav (3 s of the demo speech), the folders portraits/ and speech/ and jobs.csv (one item each), actor.mp4 (a talking video made by the first command that needs
it) and scene.yaml (the README's own direction-file example). The `curl` lines run against a
`talkinghead serve` started on a free local port; JOB becomes the id the first call returns. The
Python example runs as one script. Commands that install or run the test suite are covered elsewhere
(scripts/test.sh, the fresh-clone check) and are listed in SKIPPED with the reason.
Exit status: 0 when every command ran and wrote what it says, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent
DEMO_SECONDS = 3.0  # of the demo speech, to keep the run short
SERVER_WAIT_S = 60.0
JOB_WAIT_S = 180.0
# README commands not run here, with where they are covered
SKIPPED = {
    "bash scripts/demo.sh": "the install: run by the fresh-clone check, and by every developer",
    "source .venv/bin/activate": "the install",
    "bash scripts/test.sh": "the test suite itself (.ci/run)",
    "python scripts/check_readme.py": "this script",
    "talkinghead serve": "started here on a free port for the curl lines",
    "talkinghead eval --data ../shared/data/real --out build/eval": "tests/test_evaluation.py runs `talkinghead eval`",
}


def readme_blocks(kind: str) -> list[str]:
    """The README's fenced blocks of one language, in order."""
    return re.findall(rf"```{kind}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def readme_commands() -> list[str]:
    """Every command line of the README's bash blocks, comments removed."""
    commands = []
    for block in readme_blocks("bash"):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(strip_comment(line))
    return commands


def strip_comment(line: str) -> str:
    """A shell line without its trailing `# ...` comment (quotes respected)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.commenters = "#"
    lexer.whitespace_split = True
    words = list(lexer)
    return shlex.join(words) if words else ""


def make_inputs(folder: Path) -> None:
    """face.jpg, speech.wav and scene.yaml from the bundled assets and the README's own example."""
    from PIL import Image

    from talkinghead.assets import ASSETS_DIR
    from talkinghead.io import load_audio

    Image.open(ASSETS_DIR / "astronaut.png").convert("RGB").save(folder / "face.jpg", quality=92)
    import wave

    import numpy as np

    audio = load_audio(ASSETS_DIR / "demo_speech.wav")[:int(DEMO_SECONDS * 16000)]
    with wave.open(str(folder / "speech.wav"), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    (folder / "scene.yaml").write_text(textwrap.dedent(readme_blocks("yaml")[0]), encoding="utf-8")
    for sub, name in (("portraits", "face.jpg"), ("speech", "speech.wav")):  # the batch examples' folders
        (folder / sub).mkdir(exist_ok=True)
        shutil.copy(folder / name, folder / sub / name)
    (folder / "jobs.csv").write_text("image,audio,motion.seed\nface.jpg,speech.wav,3\n", encoding="utf-8")


def run_shell(command: str, folder: Path, env: dict) -> tuple[bool, str]:
    """Run one command; (succeeded, last line of its output)."""
    done = subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
    return done.returncode == 0, tail[0][:160]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_curl_lines(lines: list[str], folder: Path, env: dict) -> list[tuple[str, bool, str]]:
    """Start a server, run the curl lines against it (JOB = the submitted job's id)."""
    port = free_port()
    server = subprocess.Popen([str(VENV_BIN / "talkinghead"), "serve", "--port", str(port), "--data-dir",
                               str(folder / "server-data")], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    results, job = [], None
    try:
        deadline = time.time() + SERVER_WAIT_S
        while subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/api/status"], capture_output=True).returncode:
            if time.time() > deadline:
                return [(line, False, "the server did not start") for line in lines]
            time.sleep(0.5)
        for line in lines:
            command = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("JOB", job or "JOB")
            if ("/video" in command or "/motion." in command) and job:
                wait_for_job(port, job)
            done = subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
            ok = done.returncode == 0
            if command.endswith("/api/jobs") or "/api/jobs " in command or command.rstrip().endswith("api/jobs"):
                try:
                    job = json.loads(done.stdout)["id"]
                except (ValueError, KeyError):
                    ok = False
            words = shlex.split(command)
            if ok and "-o" in words:  # a downloaded MP4 must be one, a motion CSV one
                target = folder / words[words.index("-o") + 1]
                magic = (4, b"ftyp") if target.suffix == ".mp4" else (0, b"Timecode,")
                ok = target.is_file() and target.read_bytes()[magic[0]:magic[0] + len(magic[1])] == magic[1]
            results.append((line, ok, done.stdout.strip()[:100]))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


def wait_for_job(port: int, job: str) -> None:
    deadline = time.time() + JOB_WAIT_S
    while time.time() < deadline:
        out = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/api/jobs/{job}"], capture_output=True, text=True)
        if json.loads(out.stdout or "{}").get("status") in ("done", "failed"):
            return
        time.sleep(1.0)


def output_of(command: str) -> str | None:
    """The file a generate / demo command says it writes."""
    words = shlex.split(command)
    if "--out" in words:
        return words[words.index("--out") + 1]
    if words[:2] == ["talkinghead", "batch"]:
        return str(Path(words[words.index("--out-dir") + 1]) / "face_speech.mp4")
    if words[:2] == ["talkinghead", "demo"]:
        return "demo.mp4"
    if words[:2] == ["talkinghead", "generate"] and "--help" not in words:
        image = Path(words[words.index("--image") + 1]).stem
        audio = Path(words[words.index("--audio") + 1]).stem
        return f"{image}_{audio}.mp4"
    return None


def check(folder: Path) -> list[tuple[str, bool, str]]:
    """Every README command, run; (command, ok, note) each."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "GLOG_minloglevel": "2"}
    make_inputs(folder)
    commands = readme_commands()
    results = []
    needs_actor = any("actor.mp4" in c for c in commands)
    if needs_actor:  # a driving video with a face and speech: made by the README's own first command
        ok, note = run_shell("talkinghead generate --image face.jpg --audio speech.wav --out actor.mp4 --quiet", folder, env)
        if not ok:
            return [("(making actor.mp4)", False, note)]
    curl = [c for c in commands if c.startswith("curl ")]
    for command in commands:
        if command in SKIPPED or command.startswith("curl "):
            continue
        ok, note = run_shell(command, folder, env)
        target = output_of(command)
        if ok and target and not (folder / target).is_file():
            ok, note = False, f"exit 0 but {target} was not written"
        results.append((command, ok, note))
    results += run_curl_lines(curl, folder, env)
    script = folder / "readme_example.py"
    script.write_text(readme_blocks("python")[0], encoding="utf-8")
    ok, note = run_shell(f"{shlex.quote(sys.executable)} readme_example.py", folder, env)
    results.append(("(the Python example)", ok and (folder / "talking.mp4").is_file(), note))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="run in this folder and keep what the commands write")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("check_readme: curl is needed for the server lines: apt-get install curl", file=sys.stderr)
        return 1
    folder = args.keep or Path(tempfile.mkdtemp(prefix="readme-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        results = check(folder)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    for command, ok, note in results:
        print(f"{'ok  ' if ok else 'FAIL'}  {command}" + ("" if ok else f"\n      {note}"))
    for command, why in SKIPPED.items():
        print(f"skip  {command}  ({why})")
    failed = sum(not ok for _, ok, _ in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
