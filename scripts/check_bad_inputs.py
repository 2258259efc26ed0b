"""Bad-input corpus (issue 17): generate hostile and broken inputs, run each through the CLI (generate,
and the data and training commands) and the server, classify what happens, and write the table to
docs/reliability.md.

    python scripts/check_bad_inputs.py [--out docs/reliability.md] [--only cli|data|server] [--no-report]

Every input is made here, in a temporary folder (nothing binary is committed). Each CLI case runs
`talkinghead generate` in a forked child of this process (imports paid once), with its own stderr,
exit status and time limit. Each case is classified: exit status, one clean error line or not, a
traceback, an exit 0 whose video is garbage (flat or noise frames), an input modified, files left
behind. A case passes when it is refused cleanly with nothing left (or, for a valid input, accepted
with a sound video). Exit status: 0 when every case passes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bad_inputs_data import data_cases  # noqa: E402
from bad_inputs_files import Inputs, make_inputs  # noqa: E402
from bad_inputs_server import server_cases  # noqa: E402

CASE_TIMEOUT_S = 240.0
SIGNAL_AFTER_S = 1.0  # after the partial file appears
FLAT_STD = 3.0  # a frame whose pixel std is below this is flat (all white, all black)
NOISE_MAD = 60.0  # mean |frame - reference| above this on most frames is noise, not a face


@dataclass
class Outcome:
    """What one case did."""

    group: str
    name: str
    expect: str  # "refuse" | "accept"
    status: str = ""  # exit code, HTTP status or close code
    clean: bool = False  # one readable error line (argparse's usage + error line counts)
    traceback: bool = False
    garbage: bool = False
    input_modified: bool = False
    left_behind: list[str] = field(default_factory=list)
    message: str = ""
    note: str = ""  # why the case fails, or what it waits for

    @property
    def passed(self) -> bool:
        """Refused cleanly (or accepted soundly), no traceback, nothing modified or left."""
        if self.traceback or self.garbage or self.input_modified or self.left_behind:
            return False
        return self.clean if self.expect == "refuse" else self.status in ("0", "200", "202", "1000")


# --- CLI cases -------------------------------------------------------------------------------------


def cli_cases(inp: Inputs) -> list[tuple[str, str, list[str], str]]:
    """(name, expect, generate arguments without --out (unless given), signal) of every CLI case."""
    from bad_inputs_files import cli_case_table

    return cli_case_table(inp)


def _child(argv: list[str], err_path: Path) -> None:
    """In the forked child: run the command with stderr to a file; never return."""
    fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    # Ctrl-C as at a terminal: a job started in the background by a non-interactive shell (CI, `cmd &`)
    # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt for it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    try:
        from talkinghead import cli

        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
    except BaseException:  # noqa: BLE001 - the traceback is what the corpus looks for
        import traceback

        traceback.print_exc()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


def run_cli_case(argv: list[str], err_path: Path, out_dir: Path, send: str) -> tuple[int, bool]:
    """Fork, run, optionally signal once the partial file exists; (exit status, timed out)."""
    pid = os.fork()
    if pid == 0:
        _child(argv, err_path)
    deadline, signalled_at = time.monotonic() + CASE_TIMEOUT_S, None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        now = time.monotonic()
        if send and signalled_at is None and list(out_dir.glob(".*partial*")):
            signalled_at = now + SIGNAL_AFTER_S
        if signalled_at is not None and now >= signalled_at and send:
            os.kill(pid, getattr(signal, send))
            send = ""
        if now > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9, True
        time.sleep(0.02)


def classify_cli(outcome: Outcome, code: int, err: str, out_dir: Path, reference) -> None:
    """Fill the outcome from the exit status, stderr and the output folder."""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("W0000", "I0000"))]
    outcome.status = str(code)
    outcome.traceback = "Traceback (most recent call last)" in err
    error_lines = [line for line in lines if "error:" in line or "interrupted" in line]
    usage = bool(lines) and lines[0].startswith("usage:")
    outcome.clean = (code != 0 and not outcome.traceback and len(error_lines) == 1
                     and (len(lines) == 1 or usage))
    outcome.message = (error_lines[-1] if error_lines else (lines[-1] if lines else ""))[:160]
    files = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    if code != 0:
        outcome.left_behind = files
    else:
        videos = [out_dir / f for f in files if f.endswith(".mp4")]
        outcome.left_behind = [f for f in files if "partial" in f]
        outcome.garbage = any(is_garbage(v, reference) for v in videos)


def is_garbage(video: Path, reference) -> bool:
    """Flat frames, or frames far from the portrait (noise), in a written video."""
    import numpy as np

    from talkinghead.io import read_video_frames

    far = frames = 0
    for frame in read_video_frames(video):
        frames += 1
        if float(frame.std()) < FLAT_STD:
            return True
        if reference is not None and frame.shape == reference.shape:
            far += float(np.abs(frame.astype(np.float32) - reference).mean()) > NOISE_MAD
    return frames == 0 or far > frames / 2


def run_cli_cases(inp: Inputs, work: Path) -> list[Outcome]:
    """Every CLI case, in order; the first (a valid run) gives the reference frame."""
    from talkinghead.io import read_video_frames

    results, reference = [], None
    for number, (name, expect, args, send) in enumerate(cli_cases(inp)):
        out_dir = work / f"out{number:03d}"
        out_dir.mkdir()
        argv = ["generate", *args, "--quiet"]
        if "--out" not in args:
            argv += ["--out", str(out_dir / "v.mp4")]
        before = inp.digests()
        code, timed_out = run_cli_case(argv, work / "stderr.txt", out_dir, send)
        outcome = Outcome("cli", name, expect)
        classify_cli(outcome, code, (work / "stderr.txt").read_text(errors="replace"), out_dir, reference)
        outcome.input_modified = inp.digests() != before
        outcome.note = "timed out" if timed_out else ""
        if reference is None and code == 0:
            reference = next(read_video_frames(out_dir / "v.mp4")).astype("float32")
        results.append(outcome)
        print(f"cli {number:3d} {'ok  ' if outcome.passed else 'FAIL'} {name}: {outcome.message[:90]}", flush=True)
    return results


def _tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root (the data cases' inputs are small)."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_data_cases(work: Path) -> list[Outcome]:
    """Every `data prepare` / `train motion` case: refused with one error line (the per-video progress lines
    `data prepare` logs before it are allowed), no traceback, nothing written, no input changed."""
    inputs = work / "data_in"
    results = []
    for number, (name, argv, _) in enumerate(data_cases(inputs)):
        out_dir = work / f"data{number:03d}"
        out_dir.mkdir()
        argv = [a.replace("{out}", str(out_dir / "result")) for a in argv]
        before = _tree_digest(inputs)
        code, timed_out = run_cli_case(argv, work / "stderr.txt", out_dir, "")
        err = (work / "stderr.txt").read_text(errors="replace")
        outcome = Outcome("data", name, "refuse", status=str(code))
        outcome.traceback = "Traceback (most recent call last)" in err
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if "error:" in line]
        outcome.clean = code != 0 and not outcome.traceback and len(errors) == 1
        outcome.message = (errors[-1] if errors else (lines[-1] if lines else ""))[:160]
        outcome.left_behind = sorted(p.name for p in out_dir.iterdir())
        outcome.input_modified = _tree_digest(inputs) != before
        outcome.note = "timed out" if timed_out else ""
        results.append(outcome)
        print(f"data {number:3d} {'ok  ' if outcome.passed else 'FAIL'} {name}: {outcome.message[:90]}", flush=True)
    return results


# --- the report ------------------------------------------------------------------------------------


def _mark(flag: bool) -> str:
    return "yes" if flag else ""


def table(results: list[Outcome]) -> str:
    """Markdown table of every case, then the totals."""
    rows = ["| # | group | case | expect | status | clean error | traceback | garbage | input modified | "
            "left behind | result | message |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        message = r.message.replace("|", "\\|").replace("\n", " ")[:110]
        rows.append(f"| {i} | {r.group} | {r.name} | {r.expect} | {r.status} | {_mark(r.clean)} | "
                    f"{_mark(r.traceback)} | {_mark(r.garbage)} | {_mark(r.input_modified)} | "
                    f"{', '.join(r.left_behind)[:40]} | {'pass' if r.passed else 'FAIL'} | {message} |")
    return "\n".join(rows) + "\n\n" + totals(results) + "\n"


def totals(results: list[Outcome]) -> str:
    """One line of totals per group and overall."""
    lines = []
    for group in ("cli", "data", "server", "all"):
        chosen = [r for r in results if group == "all" or r.group == group]
        if not chosen:
            continue
        failed = [r for r in chosen if not r.passed]
        lines.append(f"- **{group}**: {len(chosen)} cases, {len(chosen) - len(failed)} pass, {len(failed)} fail; "
                     f"tracebacks {sum(r.traceback for r in chosen)}, exit 0 with garbage "
                     f"{sum(r.garbage for r in chosen)}, inputs modified {sum(r.input_modified for r in chosen)}, "
                     f"cases leaving files {sum(bool(r.left_behind) for r in chosen)}")
    return "\n".join(lines)


def write_report(results: list[Outcome], path: Path) -> None:
    """Replace the corpus section of docs/reliability.md (between its markers) with the new table."""
    start, end = "<!-- corpus:start -->", "<!-- corpus:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Reliability\n\n{start}\n{end}\n"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = f"\nGenerated by `python scripts/check_bad_inputs.py` on {stamp}.\n\n{table(results)}"
    path.write_text(head + start + body + end + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the corpus; exit 0 when every case passes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "reliability.md")
    parser.add_argument("--only", choices=("cli", "data", "server"))
    parser.add_argument("--no-report", action="store_true", help="print the totals only")
    parser.add_argument("--json", type=Path, help="also write every outcome to this JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    with tempfile.TemporaryDirectory(prefix="talkinghead-bad-") as tmp:
        work = Path(tmp)
        inp = make_inputs(work / "in")
        results = run_cli_cases(inp, work) if args.only in (None, "cli") else []
        if args.only in (None, "data"):
            results += run_data_cases(work)
        if args.only in (None, "server"):
            results += server_cases(inp, work / "server", Outcome)  # threads start here: after every fork
    print(totals(results))
    if args.json is not None:
        args.json.write_text(json.dumps([{**vars(r), "passed": r.passed} for r in results], indent=1))
    if not args.no_report:
        write_report(results, args.out)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
