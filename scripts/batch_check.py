"""The batch checks of issue 16: 20 items (5 dev portraits x 4 speech clips, one item's image corrupt),
on one worker and on a local Ray with 2 workers (wall time of each), then killed midway and re-run.

    python scripts/batch_check.py [--data ../shared/data/real] [--work build/batch_check] [--size 256]

Checks, each printed as ok / FAIL with the figures:
1. one worker: 19 videos written, the corrupt item reported in results.jsonl with a one-line reason;
2. Ray, 2 workers: the same;
3. killed midway (SIGKILL once about half are written) and re-run: the re-run writes only the rest
   (its results: the first run's videos "skipped"), 19 videos in the end, no partial file left (a
   SIGKILL leaves the hidden partial file of the video being written; the re-run replaces it).
Writes WORK/batch_check.json with the timings and the load average before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PORTRAITS = ("hallo_ref3.jpg", "sadtalker_art14.png", "sadtalker_people0.png", "dreamtalk_face3.png",
             "joyvasa_img005.png")
CLIPS = ("dreamtalk_spanish1.wav", "echomimic_en_girl.wav", "sadtalker_imagine.wav", "sadtalker_japanese.wav")
CORRUPT = "corrupt.jpg"


def make_manifest(data: Path, work: Path) -> Path:
    """jobs.csv: every portrait with every clip; the last item's image is a corrupt JPEG."""
    work.mkdir(parents=True, exist_ok=True)
    (work / CORRUPT).write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG" + os.urandom(64))
    rows = ["image,audio"]  # no `out`: each video goes to --out-dir as IMAGE_AUDIO.mp4
    for p in PORTRAITS:
        for c in CLIPS:
            image = work / CORRUPT if (p, c) == (PORTRAITS[-1], CLIPS[-1]) else data / p
            rows.append(f"{image},{data / c}")
    manifest = work / "jobs.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


def command(manifest: Path, out: Path, workers: int, size: int) -> list[str]:
    return [sys.executable, "-m", "talkinghead", "batch", "--manifest", str(manifest), "--out-dir", str(out),
            "--workers", str(workers), "--size", str(size), "--quiet"]


def outcome(out: Path) -> dict:
    """Videos written, other files left, and the results file's statuses (last run's lines last)."""
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()] if (out / "results.jsonl").is_file() else []
    videos = sorted(p.name for p in out.glob("*.mp4") if not p.name.startswith("."))  # not .NAME.partial.mp4
    return {"videos": videos,
            "other_files": sorted(p.name for p in out.iterdir() if p.name not in videos and p.name != "results.jsonl"),
            "results": lines}


def timed_run(manifest: Path, out: Path, workers: int, size: int) -> dict:
    load = os.getloadavg()
    start = time.perf_counter()
    done = subprocess.run(command(manifest, out, workers, size), capture_output=True, text=True, cwd=out.parent)
    seconds = time.perf_counter() - start
    result = outcome(out)
    failed = [r for r in result["results"] if r["status"] == "failed"]
    ok = (len(result["videos"]) == 19 and len(failed) == 1 and CORRUPT in failed[0]["image"]
          and "\n" not in failed[0]["error"] and done.returncode == 1 and not result["other_files"])
    return {"workers": workers, "wall_s": round(seconds, 1), "load_before": load, "exit": done.returncode,
            "summary": done.stdout.strip().splitlines()[-1:], "failed": failed, "ok": ok}


def killed_and_rerun(manifest: Path, out: Path, size: int) -> dict:
    """SIGKILL a one-worker run once ~half the videos exist, then run it again."""
    process = subprocess.Popen(command(manifest, out, 1, size), cwd=out.parent, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while len(outcome(out)["videos"]) < 9 and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = outcome(out)
    first = len(before["results"])
    again = subprocess.run(command(manifest, out, 1, size), capture_output=True, text=True, cwd=out.parent)
    after = outcome(out)
    rerun = after["results"][first:]
    statuses = {s: sum(r["status"] == s for r in rerun) for s in ("done", "skipped", "failed")}
    ok = (statuses["skipped"] == len(before["videos"]) and statuses["done"] == 19 - len(before["videos"])
          and statuses["failed"] == 1 and len(after["videos"]) == 19 and not after["other_files"])
    return {"videos_when_killed": len(before["videos"]), "files_left_by_the_kill": before["other_files"],
            "rerun": statuses, "rerun_summary": again.stdout.strip().splitlines()[-1:], "ok": ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "real")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "batch_check")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--only", choices=("one", "ray", "kill"), action="append", help="run only these parts")
    args = parser.parse_args()
    args.work, args.data = args.work.resolve(), args.data.resolve()  # the batch runs in another folder
    manifest = make_manifest(args.data, args.work)
    report, parts = {"items": 20, "size": args.size, "cpus": os.cpu_count()}, args.only or ["one", "ray", "kill"]
    for part, workers in (("one", 1), ("ray", 2)):
        if part in parts:
            out = args.work / f"out_{part}"
            subprocess.run(["rm", "-rf", str(out)])
            out.mkdir(parents=True)
            report[part] = timed_run(manifest, out, workers, args.size)
            print(part, json.dumps(report[part]), flush=True)
    if "kill" in parts:
        out = args.work / "out_kill"
        subprocess.run(["rm", "-rf", str(out)])
        out.mkdir(parents=True)
        report["kill"] = killed_and_rerun(manifest, out, args.size)
        print("kill", json.dumps(report["kill"]), flush=True)
    (args.work / "batch_check.json").write_text(json.dumps(report, indent=1))
    ok = all(report[p]["ok"] for p in parts)
    print("ok" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
