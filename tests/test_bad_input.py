"""Bad inputs: a TalkingHeadError / CLI exit code 1 with one line naming the problem, and no output.

Every case runs `talkinghead.cli.main([...])` (what the `talkinghead` command runs) with inputs in one
folder and the output in another, then checks the exit status, that stderr holds exactly one
`talkinghead: error: ...` line (no traceback), and that nothing at all (no MP4, no `.partial` file)
was left in the output folder.
"""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import talkinghead
from talkinghead import cli
from talkinghead.audio.features import SAMPLE_RATE, frame_count
from talkinghead.errors import TalkingHeadError
from talkinghead.face.landmarker import FaceLandmarker, MIN_FACE_WIDTH_PX
from talkinghead.io import probe_video, read_video_frames

SR = SAMPLE_RATE


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def write_wav(path: Path, samples: np.ndarray, rate: int = SR) -> Path:
    pcm = np.clip(np.round(np.asarray(samples, np.float64) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of cli.main(argv), as the `talkinghead` command would give them.

    `SystemExit("message")` (how cli.py reports some usage errors) is what the interpreter turns into
    exit status 1 with the message on stderr; do the same here.
    """
    try:
        code = cli.main(argv)
        extra = ""
    except SystemExit as exc:
        if isinstance(exc.code, str):
            code, extra = 1, exc.code + "\n"
        else:
            code, extra = (0 if exc.code is None else exc.code), ""
    captured = capsys.readouterr()
    return code, captured.out, captured.err + extra


def assert_one_line_error(err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    line = lines[0]
    assert line.startswith("talkinghead: error: "), line
    assert "Traceback" not in err
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    return line


def assert_no_output(out_dir: Path) -> None:
    left = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    assert left == [], f"output folder not empty: {left}"


@pytest.fixture
def dirs(tmp_path):
    """(input folder, output folder, output path)."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    return inputs, outputs, outputs / "talking.mp4"


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, demo_audio) -> Path:
    """2 s of the demo speech as a WAV (keeps the generate runs here short)."""
    return write_wav(tmp_path_factory.mktemp("speech") / "speech.wav", demo_audio[int(2.5 * SR):int(4.5 * SR)])


def generate_args(image, audio, out, *extra) -> list[str]:
    return ["generate", "--image", str(image), "--audio", str(audio), "--out", str(out), "--quiet", *extra]


# ------------------------------------------------------------------------------------------------
# bad files
# ------------------------------------------------------------------------------------------------


def test_missing_image(dirs, short_speech, capsys):
    inputs, outputs, out = dirs
    code, _, err = run_cli(generate_args(inputs / "nobody.jpg", short_speech, out), capsys)
    assert code == 1
    assert_one_line_error(err, "nobody.jpg", "does not exist")
    assert_no_output(outputs)


def test_missing_audio(dirs, demo_image_path, capsys):
    inputs, outputs, out = dirs
    code, _, err = run_cli(generate_args(demo_image_path, inputs / "nothing.wav", out), capsys)
    assert code == 1
    assert_one_line_error(err, "nothing.wav", "does not exist")
    assert_no_output(outputs)


def test_unreadable_image(dirs, short_speech, capsys):
    inputs, outputs, out = dirs
    bad = inputs / "noise.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    code, _, err = run_cli(generate_args(bad, short_speech, out), capsys)
    assert code == 1
    assert_one_line_error(err, "noise.png", "cannot read image")
    assert_no_output(outputs)


def test_corrupt_audio(dirs, demo_image_path, capsys):
    inputs, outputs, out = dirs
    bad = inputs / "noise.wav"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    code, _, err = run_cli(generate_args(demo_image_path, bad, out), capsys)
    assert code == 1
    assert_one_line_error(err, "noise.wav", "audio")
    assert_no_output(outputs)


def test_empty_audio(dirs, demo_image_path, capsys):
    inputs, outputs, out = dirs
    empty = write_wav(inputs / "empty.wav", np.zeros(0))
    code, _, err = run_cli(generate_args(demo_image_path, empty, out), capsys)
    assert code == 1
    assert_one_line_error(err, "empty.wav", "empty")
    assert_no_output(outputs)


def test_silent_audio(dirs, demo_image_path, capsys):
    inputs, outputs, out = dirs
    silent = write_wav(inputs / "silence.wav", np.zeros(3 * SR))
    code, _, err = run_cli(generate_args(demo_image_path, silent, out), capsys)
    assert code == 1
    assert_one_line_error(err, "silence.wav", "silent")
    assert_no_output(outputs)


def test_silent_array_through_the_api(tmp_path, demo_image):
    """generate() with an all-zero array raises the same error as the CLI path (no file written)."""
    with pytest.raises(TalkingHeadError, match="silent"):
        talkinghead.generate(demo_image, np.zeros(3 * SR, np.float32), tmp_path / "x.mp4")
    with pytest.raises(TalkingHeadError, match="empty"):
        talkinghead.generate(demo_image, np.zeros(0, np.float32), tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["grey", "gradient"])
def test_image_without_a_face(dirs, short_speech, capsys, kind):
    inputs, outputs, out = dirs
    if kind == "grey":
        pixels = np.full((400, 400, 3), 128, np.uint8)
    else:
        ramp = np.linspace(0, 255, 400)
        pixels = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 255 - ramp[None, :]), -1).astype(np.uint8)
    path = inputs / f"{kind}.png"
    Image.fromarray(pixels).save(path)
    code, _, err = run_cli(generate_args(path, short_speech, out), capsys)
    assert code == 1
    assert_one_line_error(err, f"{kind}.png", "no face")
    assert_no_output(outputs)


def test_tiny_face(dirs, short_speech, demo_image, capsys):
    """The astronaut at a third of its size (face ~30 px) on a 256 px canvas; --size 512 does not upscale it."""
    inputs, outputs, out = dirs
    small = cv2.resize(np.array(demo_image), None, fx=0.34, fy=0.34, interpolation=cv2.INTER_AREA)
    canvas = np.full((256, 256, 3), 128, np.uint8)
    canvas[:small.shape[0], :small.shape[1]] = small
    with FaceLandmarker() as landmarker:  # the test's premise: a face is found, and it is tiny
        faces = landmarker.detect(canvas)
    assert faces and 20 < faces[0].width < MIN_FACE_WIDTH_PX
    path = inputs / "tiny.png"
    Image.fromarray(canvas).save(path)
    code, _, err = run_cli(generate_args(path, short_speech, out, "--size", "512"), capsys)
    assert code == 1
    line = assert_one_line_error(err, "tiny.png", "px wide")
    assert f"{MIN_FACE_WIDTH_PX}" in line
    assert_no_output(outputs)


def test_tiny_face_advice_is_actionable(dirs, short_speech, demo_image, capsys):
    """Portraits are never upscaled, so for a face tiny at the image's own resolution neither a larger
    --size nor a closer crop makes it bigger: the message must not send the user there."""
    inputs, outputs, out = dirs
    small = cv2.resize(np.array(demo_image), None, fx=0.34, fy=0.34, interpolation=cv2.INTER_AREA)
    canvas = np.full((256, 256, 3), 128, np.uint8)
    canvas[:small.shape[0], :small.shape[1]] = small
    path = inputs / "tiny.png"
    Image.fromarray(canvas).save(path)
    code, _, err = run_cli(generate_args(path, short_speech, out, "--size", "4096"), capsys)
    assert code == 1
    line = assert_one_line_error(err, "tiny.png", "px wide")
    assert "raise --size" not in line and "crop the image closer" not in line, line
    assert_no_output(outputs)


def test_face_too_small_at_the_requested_size(dirs, short_speech, demo_image_path, capsys):
    """The astronaut's face is ~45 px at --size 256: refused, and the message says to raise --size."""
    _, outputs, out = dirs
    code, _, err = run_cli(generate_args(demo_image_path, short_speech, out, "--size", "256"), capsys)
    assert code == 1
    assert_one_line_error(err, "px wide", "--size")
    assert_no_output(outputs)


@pytest.mark.parametrize("name", ["talking.mov", "talking", "talking.mp4.txt"])
def test_wrong_output_extension(tmp_path, short_speech, demo_image_path, capsys, name):
    outputs = tmp_path / "out"
    outputs.mkdir()
    code, _, err = run_cli(generate_args(demo_image_path, short_speech, outputs / name), capsys)
    assert code == 1
    assert_one_line_error(err, name, ".mp4")
    assert_no_output(outputs)


@pytest.mark.parametrize("option,value", [("--size", "16"), ("--fps", "0")])
def test_out_of_range_options(dirs, short_speech, demo_image_path, capsys, option, value):
    _, outputs, out = dirs
    code, _, err = run_cli(generate_args(demo_image_path, short_speech, out, option, value), capsys)
    assert code == 1
    assert_one_line_error(err, option, "is not allowed: use a whole number from")
    assert_no_output(outputs)


# ------------------------------------------------------------------------------------------------
# two faces: works, animates the larger one
# ------------------------------------------------------------------------------------------------


def two_face_portrait(demo_image: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice], tuple[slice, slice]]:
    """The astronaut's head twice, at full and 0.6 size, side by side; with each copy's box."""
    crop = np.array(demo_image[20:300, 90:360])  # 280 x 270, face ~90 px
    small = cv2.resize(crop, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    gap = 40
    canvas = np.full((280, 270 + gap + small.shape[1], 3), 200, np.uint8)
    canvas[:, :270] = crop
    y0, x0 = 60, 270 + gap
    canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return canvas, (slice(0, 280), slice(0, 270)), (slice(y0, y0 + small.shape[0]), slice(x0, x0 + small.shape[1]))


def test_two_faces_animates_the_larger(tmp_path, short_speech, demo_image, capsys, caplog):
    canvas, big_box, small_box = two_face_portrait(demo_image)
    with FaceLandmarker() as landmarker:  # the test's premise: both faces are found
        assert len(landmarker.detect(canvas)) == 2
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    out = tmp_path / "out" / "two.mp4"
    with caplog.at_level(logging.WARNING, logger="talkinghead"):
        code, _, err = run_cli(generate_args(path, short_speech, out), capsys)
    assert code == 0, err
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["two.mp4"]
    assert any("2 faces" in r.getMessage() and "largest" in r.getMessage() for r in caplog.records), caplog.text
    info = probe_video(out)
    assert (info.width, info.height) == (canvas.shape[1], canvas.shape[0])  # smaller than --size: kept
    assert info.frame_count == frame_count(2 * SR, talkinghead.GenerateConfig().fps)

    frames = np.stack(list(read_video_frames(out))).astype(np.int16)
    big_change = np.abs(frames[(slice(None),) + big_box] - canvas[big_box]).mean(axis=(1, 2, 3))
    small_change = np.abs(frames[(slice(None),) + small_box] - canvas[small_box]).mean(axis=(1, 2, 3))
    assert big_change.max() > 2.0  # the large face talks
    assert small_change.max() < 3.0  # the small one only sees codec error
    assert big_change.mean() > 2 * small_change.mean()


def test_train_motion_bad_inputs_are_one_line_each(tmp_path, capsys):
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    import torch

    existing = tmp_path / "model.npz"
    existing.write_bytes(b"x")
    out = str(tmp_path / "new.npz")
    cases = [
        (["--data", str(tmp_path / "nowhere"), "--out", out], ("does not exist", "prepare")),
        (["--data", str(tmp_path), "--out", out], ("no manifest.tsv", "prepare")),
        (["--data", str(tmp_path), "--out", str(existing)], ("exists", "--overwrite")),
        (["--data", str(tmp_path), "--out", out, "--steps", "0"], ("--steps", "at least 1")),
    ]
    if not torch.cuda.is_available():
        cases.append((["--data", str(tmp_path), "--out", out, "--device", "cuda"], ("no GPU", "--device cpu")))
    for argv, words in cases:
        code, _, err = run_cli(["train", "motion", "--quiet", *argv], capsys)
        assert code == 1, (argv, err)
        assert_one_line_error(err, *words)
    assert existing.read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # nothing written


def test_data_prepare_bad_inputs_are_one_line_each_and_leave_nothing(tmp_path, capsys):
    from talkinghead.assets import ASSETS_DIR

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes((ASSETS_DIR / "astronaut.png").read_bytes()[:5000])  # no decoder opens it
    note = tmp_path / "note.txt"
    note.write_text("a note\n")
    files_only = tmp_path / "files.tsv"
    files_only.write_text("file\nclip.mp4\n")
    out = str(tmp_path / "prepared")
    cases = [
        ([str(videos), "--out", str(note)], ("is a file", "folder")),
        ([str(videos), "--out", out, "--speakers", str(note)], ("no 'file' column",)),
        ([str(videos), "--out", out, "--speakers", str(files_only)], ("no 'speaker' column",)),
        ([str(videos), "--out", out, "--workers", "1"], ("no clip could be prepared", "clip.mp4", "damaged")),
    ]
    for argv, words in cases:
        code, _, err = run_cli(["data", "prepare", *argv], capsys)
        assert code == 1, (argv, err)
        error_lines = [line for line in err.splitlines() if "error:" in line]
        assert len(error_lines) == 1 and all(w in error_lines[0] for w in words), err  # per-video progress lines may precede it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["files.tsv", "note.txt", "videos"]  # no empty dataset left
    assert note.read_text() == "a note\n"
