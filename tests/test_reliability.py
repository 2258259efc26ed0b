"""Issue 17, command and file part: no traceback, no lost input, nothing left behind, flat memory.

Each test reproduces one failure of the bad-input run (the option-value cases belong to the config
schema and are in scripts/check_bad_inputs.py's corpus).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from talkinghead import cli, motion_files
from talkinghead.audio.features import SAMPLE_RATE
from talkinghead.direction import MAX_PROBLEM_CHARS, load_direction
from talkinghead.errors import TalkingHeadError
from talkinghead.face import landmarks as L
from talkinghead.io import VideoWriter, audio_summary, iter_audio, load_audio
from talkinghead.outputs import check_output_path, check_output_paths
from repo_scripts import load_script

MAX_ERROR_CHARS = 600


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


def one_line_error(err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("talkinghead: error: "), err
    assert "Traceback" not in err and len(lines[0]) < MAX_ERROR_CHARS, err
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


@pytest.fixture
def speech(tmp_path, demo_audio) -> Path:
    return write_wav(tmp_path / "speech.wav", demo_audio[: 2 * SAMPLE_RATE])


# --- outputs: checked first, never an input, atomic ---------------------------------------------


def speech_video(path: Path, samples: np.ndarray) -> Path:
    """An MP4 with sound (a recording given as --audio), made here."""
    with VideoWriter(path, 25, 64, 64, audio=samples) as writer:
        for _ in range(int(25 * len(samples) / SAMPLE_RATE)):
            writer.write(np.zeros((64, 64, 3), np.uint8))
    return path


def test_out_equal_to_the_audio_is_refused_and_the_audio_kept(tmp_path, demo_audio, demo_image_path, capsys):
    talk = speech_video(tmp_path / "talk.mp4", demo_audio[: 2 * SAMPLE_RATE])
    before = digest(talk)
    code, err = run_cli(["generate", "--image", str(demo_image_path), "--audio", str(talk), "--out", str(talk)],
                        capsys)
    assert code == 1 and digest(talk) == before
    one_line_error(err, "also an input")


def test_out_equal_to_the_image_through_another_spelling_is_refused(tmp_path, speech, demo_image_path):
    from talkinghead.pipeline import generate

    image = tmp_path / "face.png"
    image.write_bytes(demo_image_path.read_bytes())
    with pytest.raises(TalkingHeadError, match="also an input"):
        generate(image, speech, tmp_path / "." / "face.png")
    assert image.read_bytes() == demo_image_path.read_bytes()


def test_motion_out_folder_is_refused_before_the_video_is_written(tmp_path, speech, demo_image_path, capsys):
    out = tmp_path / "out.mp4"
    (tmp_path / "motion.csv").mkdir()
    code, err = run_cli(["generate", "--image", str(demo_image_path), "--audio", str(speech), "--out", str(out),
                         "--motion-out", str(tmp_path / "motion.csv")], capsys)
    assert code == 1 and not out.exists()
    one_line_error(err, "folder")


def test_unwritable_output_folder_is_refused_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as on a read-only disk
    with pytest.raises(TalkingHeadError, match="cannot be written"):
        check_output_path(tmp_path / "out.mp4", "--out")


def test_output_below_a_file_and_two_equal_outputs_are_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TalkingHeadError, match="is a file"):
        check_output_path(blocker / "out.mp4", "--out")
    with pytest.raises(TalkingHeadError, match="same file"):
        check_output_paths({"--out": tmp_path / "a.mp4", "--motion-out": tmp_path / "a.mp4"}, [])


def test_a_full_disk_mid_write_is_one_line_and_removes_the_partial_file(tmp_path):
    writer = VideoWriter(tmp_path / "out.mp4", 25, 64, 64)

    class FullDisk:
        def __init__(self, real):
            self.real = real

        def mux(self, packets):
            raise av.error.OSError(28, "No space left on device")

        def close(self):
            self.real.close()

    writer._container = FullDisk(writer._container)
    with pytest.raises(TalkingHeadError, match="No space left|free some disk space"):
        for _ in range(60):
            writer.write(np.zeros((64, 64, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _default_sigint() -> None:
    """A child inherits an ignored SIGINT (the shell's background jobs, and this test process once a test
    has started something that ignores it, as Ray's and uvicorn's set-up can): give it Ctrl-C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_mid_run_leaves_nothing_behind(tmp_path, demo_audio, demo_image_path, sig):
    audio = write_wav(tmp_path / "long.wav", np.tile(demo_audio, 8))  # ~1 min: still running when signalled
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = dict(os.environ, GLOG_minloglevel="2")
    process = subprocess.Popen([sys.executable, "-m", "talkinghead", "generate", "--image", str(demo_image_path),
                                "--audio", str(audio), "--out", str(out_dir / "v.mp4"), "--quiet"],
                               stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while not list(out_dir.glob(".*partial*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be signalled"
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0 and "Traceback" not in err, err
    assert "interrupted; no output written" in err
    assert sorted(p.name for p in out_dir.iterdir()) == []


# --- audio decoded in a stream ------------------------------------------------------------------


def test_streamed_audio_equals_the_whole_file(tmp_path, demo_audio_path):
    whole = load_audio(demo_audio_path)
    chunks = list(iter_audio(demo_audio_path, 1.0))
    assert all(len(c) == SAMPLE_RATE for c in chunks[:-1]) and 0 < len(chunks[-1]) <= SAMPLE_RATE
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    summary = audio_summary(demo_audio_path)
    assert summary.samples == len(whole) and summary.peak == pytest.approx(float(np.abs(whole).max()))


def test_streamed_audio_memory_does_not_grow_with_length(tmp_path, demo_audio):
    peaks = []
    for minutes in (1, 4):
        path = write_wav(tmp_path / f"{minutes}.wav", np.resize(demo_audio, minutes * 60 * SAMPLE_RATE))
        tracemalloc.start()
        for _ in iter_audio(path, 1.0):
            pass
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    whole_4min = 4 * 60 * SAMPLE_RATE * 4  # bytes of the float32 array load_audio would hold
    assert peaks[1] < whole_4min / 10 and peaks[1] < 1.5 * peaks[0] + 200_000, peaks


def test_generate_from_a_file_never_loads_the_whole_audio(tmp_path, speech, demo_image_path, monkeypatch):
    import talkinghead.pipeline as pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("load_audio called: the audio file must be streamed")

    monkeypatch.setattr(pipeline, "load_audio", refuse)
    result = pipeline.generate(demo_image_path, speech, tmp_path / "out.mp4")
    assert result.frames > 0 and result.audio_seconds == pytest.approx(2.0, abs=0.01)


# --- files that are too big or hostile ----------------------------------------------------------


def test_yaml_alias_bomb_is_refused_fast_with_a_short_message(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nevents: [*i]\n")
    started = time.monotonic()
    with pytest.raises(TalkingHeadError, match="aliases") as caught:
        load_direction(bomb)
    assert time.monotonic() - started < 2 and len(str(caught.value)) < MAX_ERROR_CHARS


def test_direction_messages_quote_at_most_a_short_piece(tmp_path):
    path = tmp_path / "d.json"
    for event in ({"at": 1, "emotion": "x" * 100_000}, {"at": 1, "gaze": "y" * 100_000},
                  {"at": "z" * 100_000, "gaze": "left"}):
        path.write_text('{"events": [' + __import__("json").dumps(event) + "]}")
        with pytest.raises(TalkingHeadError) as caught:
            load_direction(path)
        assert len(str(caught.value)) < MAX_PROBLEM_CHARS + 200


def test_deeply_nested_direction_is_one_clear_error(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(TalkingHeadError, match="nested too deeply"):
        load_direction(path)


def motion_csv(frames: int) -> str:
    """A Live Link CSV of `frames` rows, made as benchmarks/bench_motion_files.py makes its large one."""
    return load_script("benchmarks/bench_motion_files.py").live_link_csv(frames)


def test_motion_file_over_the_row_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(motion_files, "MAX_MOTION_FRAMES", 100)
    path = tmp_path / "m.csv"
    path.write_text(motion_csv(101))
    with pytest.raises(TalkingHeadError, match="over the limit of 100"):
        motion_files.read_motion(path)
    monkeypatch.setattr(motion_files, "MAX_MOTION_FILE_BYTES", 1000)
    with pytest.raises(TalkingHeadError, match="MB limit"):
        motion_files.read_motion(path)


def test_a_large_motion_csv_parses_whole_and_exact(tmp_path):
    """20,000 rows (13 minutes) read back row for row. How fast is a benchmark's job
    (benchmarks/bench_motion_files.py: a per-cell loop once made 1e6 rows take minutes)."""
    frames = 20_000
    jaw = motion_files.CSV_COLUMNS.index("JawOpen")
    lines = motion_csv(frames).splitlines()
    for i in range(1, frames + 1):
        cells = lines[i].split(",")
        cells[jaw] = f"{(i - 1) % 100 / 100:.2f}"
        lines[i] = ",".join(cells)
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n")
    motion, times = motion_files.read_motion(path)
    assert len(motion) == frames
    np.testing.assert_allclose(motion.expression[:, L.BLENDSHAPE_NAMES.index("jawOpen")], np.arange(frames) % 100 / 100)
    np.testing.assert_allclose(times, np.arange(frames) / 25, atol=1e-9)


def test_a_bad_motion_cell_is_still_named(tmp_path):
    text = motion_csv(10).splitlines()
    cells = text[5].split(",")
    cells[7] = "oops"
    text[5] = ",".join(cells)
    path = tmp_path / "m.csv"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(TalkingHeadError, match="line 6, column .*'oops' is not a number"):
        motion_files.read_motion(path)


def test_a_30px_face_is_called_too_small(tmp_path, demo_image, speech, capsys):
    import cv2
    from PIL import Image

    small = cv2.resize(demo_image, None, fx=30 / 90, fy=30 / 90, interpolation=cv2.INTER_AREA)  # face ~90 px
    canvas = np.full((512, 512, 3), 200, np.uint8)
    canvas[100:100 + small.shape[0], 150:150 + small.shape[1]] = small
    Image.fromarray(canvas).save(tmp_path / "tiny-face.png")
    out = tmp_path / "out"
    code, err = run_cli(["generate", "--image", str(tmp_path / "tiny-face.png"), "--audio", str(speech),
                         "--out", str(out / "v.mp4")], capsys)
    assert code == 1 and not out.exists()
    line = one_line_error(err, "too small", "px wide")
    assert "no face found" not in line
