"""Motion files: Live Link Face CSV and JSON export / import, exact round trips, identical frames on
re-render, and clear errors for malformed files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from talkinghead.face import landmarks as L
from talkinghead.config import GenerateConfig
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.recorded import RecordedMotion
from talkinghead.motion.types import HEAD_FIELDS, Motion
from talkinghead.motion_files import (BLENDSHAPE_COUNT, CSV_COLUMNS, LIVE_LINK_BLENDSHAPES, read_motion, timecode,
                                      write_motion)

FPS = 25
SR = 16000


def random_motion(frames: int = 40, seed: int = 0) -> Motion:
    """Full-precision float32 values in every field's realistic range."""
    rng = np.random.default_rng(seed)
    head = np.zeros((frames, len(HEAD_FIELDS)), np.float32)
    head[:, :3] = rng.normal(0, 6, (frames, 3))
    head[:, 3:5] = rng.normal(0, 0.05, (frames, 2))
    head[:, 5] = rng.uniform(0.9, 1.1, frames)
    return Motion(rng.uniform(0, 1, (frames, L.N_BLENDSHAPES)).astype(np.float32), head,
                  rng.normal(0, 0.1, (frames, 2)).astype(np.float32))


def assert_same(a: Motion, b: Motion) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.expression, b.expression)
    np.testing.assert_array_equal(a.head, b.head)
    np.testing.assert_array_equal(a.gaze, b.gaze)


# ------------------------------------------------------------------------------------------------
# layout
# ------------------------------------------------------------------------------------------------


def test_csv_has_the_live_link_face_layout(tmp_path):
    path = write_motion(tmp_path / "m.csv", random_motion(30), FPS)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    assert header[:5] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft"]
    assert header[2 + 7] == "EyeBlinkRight" and header[2 + 14] == "JawForward" and header[2 + 51] == "TongueOut"
    assert header[54:63] == ["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                             "RightEyeYaw", "RightEyePitch", "RightEyeRoll"]
    assert tuple(header) == CSV_COLUMNS and len(LIVE_LINK_BLENDSHAPES) == 52
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 30 and all(len(r) == len(header) for r in rows)
    assert all(r[1] == str(BLENDSHAPE_COUNT) == "61" for r in rows)
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d:\d\d\.\d\d\d", r[0]) for r in rows)
    assert rows[0][0] == "00:00:00:00.000" and rows[26][0] == "00:00:01:01.000"
    assert timecode(25 * 3661 + 3, 25) == "01:01:01:03.000"


def test_csv_head_rotation_is_in_radians(tmp_path):
    motion = Motion.rest(np.zeros(L.N_BLENDSHAPES), 1)
    head = motion.head.copy()
    head[0, :3] = (30.0, -10.0, 5.0)
    path = write_motion(tmp_path / "m.csv", Motion(motion.expression, head, motion.gaze), FPS)
    row = dict(zip(*[line.split(",") for line in path.read_text().splitlines()]))
    assert float(row["HeadYaw"]) == pytest.approx(np.radians(30.0), rel=1e-6)
    assert float(row["HeadPitch"]) == pytest.approx(np.radians(-10.0), rel=1e-6)


# ------------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_round_trip_is_exact(tmp_path, suffix):
    motion = random_motion(300, seed=3)
    back, times = read_motion(write_motion(tmp_path / f"m{suffix}", motion, FPS))
    assert_same(motion, back)
    np.testing.assert_allclose(times, np.arange(300) / FPS, atol=1e-9)


def test_recorded_motion_replays_frame_for_frame_at_the_same_rate(tmp_path):
    motion = random_motion(50)
    source = RecordedMotion(*read_motion(write_motion(tmp_path / "m.csv", motion, FPS)))
    source.start(np.zeros(L.N_BLENDSHAPES), FPS)
    from talkinghead.audio.features import extract_features

    features = extract_features(np.zeros(SR * 3, np.float32), FPS)  # 75 frames: longer than the file
    out = source.push(features)
    assert len(out) == 75
    assert_same(out[:50], motion)
    np.testing.assert_array_equal(out.expression[50:], np.repeat(motion.expression[-1:], 25, 0))  # last frame held


def test_imported_csv_renders_the_same_frames(astronaut_pipeline, demo_audio, tmp_path):
    """Export the motion of a generated clip, import it, render: identical frames."""
    from talkinghead.pipeline import Pipeline

    audio = demo_audio[: int(1.2 * SR)]
    runs: list[Motion] = []
    frames = list(astronaut_pipeline.stream(astronaut_pipeline.chunks(audio), runs.append))
    path = write_motion(tmp_path / "m.csv", Motion.concat(runs), FPS)
    replay = Pipeline(astronaut_pipeline.portrait, astronaut_pipeline.config, RecordedMotion(*read_motion(path)))
    again = list(replay.stream(replay.chunks(audio)))
    assert len(again) == len(frames) == 30
    for a, b in zip(frames, again):
        np.testing.assert_array_equal(a, b)


def test_generate_writes_the_motion_file(demo_image_path, demo_audio, tmp_path):
    import talkinghead

    out = tmp_path / "out.mp4"
    talkinghead.generate(demo_image_path, demo_audio[: SR], out, motion_out=tmp_path / "m.json")
    motion, times = read_motion(tmp_path / "m.json")
    assert len(motion) == 25 and out.is_file()


def test_bad_motion_out_extension_fails_before_rendering(demo_image_path, demo_audio, tmp_path):
    import talkinghead

    with pytest.raises(TalkingHeadError, match=r"must end in \.csv .*or \.json"):
        talkinghead.generate(demo_image_path, demo_audio[:SR], tmp_path / "o.mp4", motion_out=tmp_path / "m.txt")
    assert list(tmp_path.iterdir()) == []


def test_motion_in_needs_speech(demo_image_path, tmp_path):
    import talkinghead

    path = write_motion(tmp_path / "m.csv", random_motion(5), FPS)
    with pytest.raises(TalkingHeadError, match="has no sound"):
        talkinghead.generate(demo_image_path, None, tmp_path / "o.mp4", GenerateConfig(), motion_in=path)


# ------------------------------------------------------------------------------------------------
# files from elsewhere: a Live Link Face recording (60 fps timecode, sub-frames, no extra columns)
# ------------------------------------------------------------------------------------------------


def live_link_recording(rows: int = 90) -> str:
    header = list(CSV_COLUMNS[:2 + 52 + 9])
    lines = [",".join(header)]
    for i in range(rows):
        frame = 2 * i + 31  # 30 rows a second, counted in a 60 fps timecode, starting mid-second
        seconds, ff = divmod(frame, 60)
        values = ["0.1"] * 52
        values[header.index("JawOpen") - 2] = f"{0.5 * (i % 2):.4f}"
        rotations = ["0.1", "0", "0", "0.2", "0", "0", "0.2", "0", "0"]  # head yaw 0.1 rad, eyes 0.2 rad to the side
        lines.append(",".join([f"13:13:{4 + seconds:02d}:{ff:02d}.652", "61"] + values + rotations))
    return "\n".join(lines) + "\n"


def test_live_link_recording_imports(tmp_path):
    path = tmp_path / "take.csv"
    path.write_text(live_link_recording())
    motion, times = read_motion(path)
    assert len(motion) == 90
    np.testing.assert_allclose(np.diff(times), 1 / 30, atol=1e-9)  # 60 fps timecode, every second frame
    np.testing.assert_allclose(motion.head[:, 0], np.degrees(0.1), rtol=1e-5)
    np.testing.assert_allclose(motion.head[:, 5], 1.0)
    assert np.all(motion.gaze[:, 0] > 0.05)  # eye rotation -> iris offset to the right
    jaw = motion.coefficient("jawOpen")
    assert jaw[0] == 0.0 and jaw[1] == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------------
# malformed files
# ------------------------------------------------------------------------------------------------


def good_csv(tmp_path) -> list[str]:
    return write_motion(tmp_path / "good.csv", random_motion(5), FPS).read_text().splitlines()


@pytest.mark.parametrize("damage, message", [
    (lambda lines: [lines[0].replace("JawOpen,", "")] + [",".join(l.split(",")[:-1]) for l in lines[1:]],
     "missing blendshape columns: JawOpen"),
    (lambda lines: lines[:2] + [lines[2].replace(",61,", ",61,abc,", 1).rsplit(",", 1)[0]] + lines[3:],
     r"line 3, column EyeBlinkLeft: 'abc' is not a number"),
    (lambda lines: lines[:2] + ["00:00:00" + lines[2][15:]] + lines[3:], r"line 3: timecode '00:00:00' is not HH:MM:SS:FF"),
    (lambda lines: lines[:2] + [lines[2] + ",1"] + lines[3:], "line 3 has 69 values, the header has 68"),
    (lambda lines: [lines[0], lines[2], lines[1]] + lines[3:], "timecodes must increase"),
    (lambda lines: [lines[0]], "no frames"),
    (lambda lines: [lines[0].replace("Timecode", "Time")] + lines[1:], "no Timecode column"),
    (lambda lines: lines[:2] + [lines[2].replace(",61,", ",61,7.5,", 1).rsplit(",", 1)[0]] + lines[3:],
     "blendshape values must lie in 0..1"),
])
def test_malformed_csv_gets_a_clear_error(tmp_path, damage, message):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(damage(good_csv(tmp_path))) + "\n")
    with pytest.raises(TalkingHeadError, match=message):
        read_motion(path)


@pytest.mark.parametrize("edit, message", [
    (lambda d: {**d, "format": "other"}, "not a talkinghead motion file"),
    (lambda d: {**d, "version": 9}, "version 9 is not supported"),
    (lambda d: {k: v for k, v in d.items() if k != "gaze"}, "missing gaze"),
    (lambda d: {**d, "head": d["head"][:-1]}, "different numbers of frames"),
    (lambda d: {**d, "expression": [row[:-1] for row in d["expression"]]}, "one row of 52 numbers"),
    (lambda d: {**d, "fps": -1}, "fps -1 must be a positive number"),
])
def test_malformed_json_gets_a_clear_error(tmp_path, edit, message):
    data = json.loads(write_motion(tmp_path / "good.json", random_motion(5), FPS).read_text())
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(edit(data)))
    with pytest.raises(TalkingHeadError, match=message):
        read_motion(path)


def test_unreadable_motion_files(tmp_path):
    with pytest.raises(TalkingHeadError, match="not found"):
        read_motion(tmp_path / "missing.csv")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(TalkingHeadError, match="not valid JSON"):
        read_motion(tmp_path / "x.json")
    with pytest.raises(TalkingHeadError, match=r"must end in \.csv"):
        read_motion(tmp_path / "x.bvh")
