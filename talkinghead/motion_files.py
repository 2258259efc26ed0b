"""Motion files: the motion track as a Live Link Face CSV or as JSON, written and read back exactly.

CSV (`.csv`) follows the layout of the Live Link Face app's recordings, which Blender, Unreal,
Maya and MotionBuilder importers read:

    Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,
    LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll,HeadX,HeadY,HeadScale,GazeX,GazeY

- Timecode `HH:MM:SS:FF.mmm`: FF counts frames within the second at the file's frame rate (the
  rendering fps on export); the part after the point is a sub-frame fraction (0 on export).
- BlendShapeCount is 61: the 52 ARKit blendshapes (names capitalised, in Live Link's order: left eye,
  right eye, jaw, mouth, brows, cheeks, nose, tongue) and 9 rotations.
- HeadYaw / HeadPitch / HeadRoll are radians (ARKit's unit; the eye-rotation columns of real Live
  Link recordings hold values around +-0.2), signs as Motion.head (yaw > 0 turns the face towards the
  image's left, pitch > 0 tilts it down, roll > 0 turns it clockwise on screen).
- Left/RightEyeYaw/Pitch are approximate eye rotations (radians) from the iris offset (eye width
  = EYE_WIDTH_PER_RADIUS eyeball radii); Roll is 0.
- Five trailing columns, ignored by Live Link importers, carry what the layout has no place for so
  that import renders identical frames: HeadX, HeadY (head translation, inter-ocular distances),
  HeadScale, GazeX, GazeY (iris offset, eye widths). Files without them import with no translation,
  scale 1 and the gaze taken from the eye rotations.

Every value is written with enough digits to read back to the same float32 (rotations, converted
between degrees and radians in float64, also come back exact).

JSON (`.json`) holds the arrays directly: {"format": "talkinghead-motion", "version": 1, "fps",
"frames", "blendshapes" (names), "head_fields", "expression" (T x 52), "head" (T x 6), "gaze" (T x 2)}.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from .face import landmarks as L
from .errors import TalkingHeadError
from .outputs import write_text_atomic
from .io import read_text_file
from .motion.types import HEAD_FIELDS, Motion

FORMATS = (".csv", ".json")
JSON_FORMAT, JSON_VERSION = "talkinghead-motion", 1
# ARKit blendshapes in Live Link Face's column order
LIVE_LINK_BLENDSHAPES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight",
    "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
    "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
ROTATION_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                    "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
EXTRA_COLUMNS = ("HeadX", "HeadY", "HeadScale", "GazeX", "GazeY")
BLENDSHAPE_COUNT = len(LIVE_LINK_BLENDSHAPES) + len(ROTATION_COLUMNS)  # 61, as Live Link writes
CSV_COLUMNS = (("Timecode", "BlendShapeCount") + tuple(n[0].upper() + n[1:] for n in LIVE_LINK_BLENDSHAPES)
               + ROTATION_COLUMNS + EXTRA_COLUMNS)
EYE_WIDTH_PER_RADIUS = 2.5  # an eye opening is ~30 mm wide on a ~12 mm-radius eyeball
TIMECODE = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})[:;](\d+)(?:\.(\d+))?$")
TIMECODE_RATES = (24, 25, 30, 48, 50, 60, 100, 120)  # frame rates a CSV's timecode may count in
MAX_MOTION_FRAMES = 4 * 3600 * 30  # 4 hours at 30 FPS (the longest speech the command takes is 4 hours)
MAX_MOTION_FILE_BYTES = 400_000_000  # a 4-hour Live Link CSV at full precision is about 300 MB
assert len(set(LIVE_LINK_BLENDSHAPES)) == L.N_BLENDSHAPES and set(LIVE_LINK_BLENDSHAPES) == set(L.BLENDSHAPE_NAMES)
_LIVE_LINK_INDEX = np.array([L.BLENDSHAPE_INDEX[n] for n in LIVE_LINK_BLENDSHAPES])


# --- writing ---------------------------------------------------------------------------------------

def write_motion(path: str | os.PathLike, motion: Motion, fps: float) -> Path:
    """Write `motion` (frames 1 / fps apart) as CSV or JSON, chosen by the extension; atomic."""
    path = Path(path)
    kind = motion_file_kind(path, "--motion-out")
    text = _csv_text(motion, fps) if kind == ".csv" else _json_text(motion, fps)
    return write_text_atomic(path, text, "motion file")


def motion_file_kind(path: Path, option: str) -> str:
    """'.csv' or '.json' from the file name; a clear error for anything else."""
    kind = path.suffix.lower()
    if kind not in FORMATS:
        raise TalkingHeadError(f"{option} '{path}' must end in .csv (Live Link Face layout) or .json")
    return kind


def _f32(x: float) -> str:
    """A float32 value with enough digits (9 significant) to read back exactly."""
    return f"{float(x):.9g}"


def timecode(frame: int, fps: float) -> str:
    """HH:MM:SS:FF.mmm of frame `frame` at a whole-number frame rate."""
    rate = int(round(fps))
    seconds, ff = divmod(int(frame), rate)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}.000"


def _csv_text(motion: Motion, fps: float) -> str:
    if abs(fps - round(fps)) > 1e-9 or fps < 1:
        raise TalkingHeadError(f"a CSV motion file needs a whole-number frame rate, not {fps}: use --fps 25 or 30")
    rows = [",".join(CSV_COLUMNS)]
    head_deg = motion.head[:, :3].astype(np.float64)
    eye = np.arcsin(np.clip(EYE_WIDTH_PER_RADIUS * motion.gaze.astype(np.float64), -1, 1))  # (T, 2) yaw, pitch
    for i in range(len(motion)):
        values = [timecode(i, fps), str(BLENDSHAPE_COUNT)]
        values += [_f32(v) for v in motion.expression[i, _LIVE_LINK_INDEX]]
        values += [repr(math.radians(float(v))) for v in head_deg[i]]
        values += [repr(float(eye[i, 0])), repr(float(eye[i, 1])), "0", repr(float(eye[i, 0])), repr(float(eye[i, 1])), "0"]
        h = motion.head[i]
        values += [_f32(h[HEAD_FIELDS.index("tx")]), _f32(h[HEAD_FIELDS.index("ty")]), _f32(h[HEAD_FIELDS.index("scale")]),
                   _f32(motion.gaze[i, 0]), _f32(motion.gaze[i, 1])]
        rows.append(",".join(values))
    return "\n".join(rows) + "\n"


def _json_text(motion: Motion, fps: float) -> str:
    data = {"format": JSON_FORMAT, "version": JSON_VERSION, "fps": float(fps), "frames": len(motion),
            "blendshapes": list(L.BLENDSHAPE_NAMES), "head_fields": list(HEAD_FIELDS),
            "expression": [[float(v) for v in row] for row in motion.expression],
            "head": [[float(v) for v in row] for row in motion.head],
            "gaze": [[float(v) for v in row] for row in motion.gaze]}
    return json.dumps(data, separators=(",", ":")) + "\n"


# --- reading ---------------------------------------------------------------------------------------

def read_motion(path: str | os.PathLike, default_fps: float = 25.0) -> tuple[Motion, np.ndarray]:
    """Read a CSV or JSON motion file -> (Motion, frame times in seconds from the first frame).

    `default_fps` is assumed for a CSV's timecode when it spans less than one second (its frame
    rate cannot be read from it then)."""
    path = Path(path)
    kind = motion_file_kind(path, "--motion-in")
    if path.is_file() and path.stat().st_size > MAX_MOTION_FILE_BYTES:
        raise _bad(path, f"{path.stat().st_size / 1e6:.0f} MB is over the {MAX_MOTION_FILE_BYTES / 1e6:.0f} MB limit "
                         f"(at most {MAX_MOTION_FRAMES} frames): split the motion into parts")
    text = read_text_file(path, "motion file", "a UTF-8 CSV or JSON file")
    return _read_csv(text, path, default_fps) if kind == ".csv" else _read_json(text, path)


def _check_frame_count(frames: int, path: Path) -> None:
    if frames > MAX_MOTION_FRAMES:
        raise _bad(path, f"{frames} frames is over the limit of {MAX_MOTION_FRAMES} (4 hours at 30 FPS): "
                         "split the motion into parts")


def _bad(path: Path, problem: str) -> TalkingHeadError:
    return TalkingHeadError(f"motion file '{path}': {problem}")


def _read_json(text: str, path: Path) -> tuple[Motion, np.ndarray]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        raise _bad(path, f'not a talkinghead motion file (expected "format": "{JSON_FORMAT}"); '
                         "write one with --motion-out FILE.json")
    if data.get("version") != JSON_VERSION:
        raise _bad(path, f"version {data.get('version')!r} is not supported (this talkinghead reads version {JSON_VERSION})")
    missing = [k for k in ("fps", "blendshapes", "head_fields", "expression", "head", "gaze") if k not in data]
    if missing:
        raise _bad(path, f"missing {', '.join(missing)}")
    fps = data["fps"]
    if not isinstance(fps, (int, float)) or not 0 < fps <= 1000:
        raise _bad(path, f"fps {fps!r} must be a positive number")
    names = data["blendshapes"]
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(L.BLENDSHAPE_NAMES):
        raise _bad(path, f"'blendshapes' must list the {L.N_BLENDSHAPES} ARKit names")
    if data["head_fields"] != list(HEAD_FIELDS):
        raise _bad(path, f"'head_fields' must be {list(HEAD_FIELDS)}")
    arrays = {}
    for key, width in (("expression", L.N_BLENDSHAPES), ("head", len(HEAD_FIELDS)), ("gaze", 2)):
        if isinstance(data[key], list):
            _check_frame_count(len(data[key]), path)
        try:
            arr = np.array(data[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise _bad(path, f"'{key}' must be a list of rows of numbers") from None
        if arr.ndim != 2 or arr.shape[1] != width or len(arr) == 0:
            raise _bad(path, f"'{key}' must have one row of {width} numbers per frame (at least one frame)")
        arrays[key] = arr
    frames = {len(a) for a in arrays.values()}
    if len(frames) != 1:
        raise _bad(path, "'expression', 'head' and 'gaze' have different numbers of frames")
    order = [names.index(n) for n in L.BLENDSHAPE_NAMES]
    motion = _checked_motion(arrays["expression"][:, order], arrays["head"], arrays["gaze"], path)
    return motion, np.arange(len(motion)) / float(fps)


def _read_csv(text: str, path: Path, default_fps: float) -> tuple[Motion, np.ndarray]:
    _check_frame_count(text.count("\n") - 1, path)  # a quick upper bound before any parsing
    rows = [r for r in csv.reader(text.splitlines()) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise _bad(path, "no frames: expected a header line and one line per frame")
    header = [h.strip() for h in rows[0]]
    column = {h.lower(): i for i, h in enumerate(header)}
    if "timecode" not in column:
        raise _bad(path, "no Timecode column: expected the Live Link Face layout (Timecode,BlendShapeCount,EyeBlinkLeft,...)")
    missing = [n for n in LIVE_LINK_BLENDSHAPES if n.lower() not in column]
    if missing:
        raise _bad(path, f"missing blendshape columns: {', '.join(n[0].upper() + n[1:] for n in missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}")
    body = rows[1:]
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise _bad(path, f"line {r + 2} has {len(row)} values, the header has {len(header)}")
    stamps = [_parse_timecode(row[column["timecode"]], path, r + 2) for r, row in enumerate(body)]
    seconds, frames = (np.array(v, dtype=np.int64) for v in zip(*stamps))
    wanted = [n.lower() for n in LIVE_LINK_BLENDSHAPES + ROTATION_COLUMNS + EXTRA_COLUMNS]
    values = np.full((len(body), len(wanted)), np.nan)
    for j, name in enumerate(wanted):
        if name in column:
            values[:, j] = _number_column(body, column[name], header, path)
    rate = _timecode_rate(seconds, frames, default_fps)
    times = seconds + _frame_fractions(body, column["timecode"]) / rate + frames / rate
    if np.any(np.diff(times) <= 0):
        raise _bad(path, "timecodes must increase from line to line")
    return _checked_motion(*_csv_motion(values), path), times - times[0]


def _number_column(body: list[list[str]], col: int, header: list[str], path: Path) -> np.ndarray:
    """One CSV column -> float64 values, converted without a Python loop body; the first bad cell is named."""
    cells = [row[col] for row in body]
    try:
        out = np.fromiter(map(float, cells), np.float64, len(cells))  # float() is C; no Python loop body
        if np.all(np.isfinite(out)):
            return out
    except ValueError:
        pass
    out = np.empty(len(cells))
    for r, cell in enumerate(cells):  # slow path, only to name the culprit
        try:
            out[r] = float(cell.strip())
        except ValueError:
            raise _bad(path, f"line {r + 2}, column {header[col]}: {cell.strip()[:40]!r} is not a number") from None
        if not math.isfinite(out[r]):
            raise _bad(path, f"line {r + 2}, column {header[col]}: {cell.strip()[:40]!r} is not a finite number")
    return out


def _csv_motion(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Live Link columns (blendshapes, rotations, extras; NaN where absent) -> expression, head, gaze."""
    n_bs = len(LIVE_LINK_BLENDSHAPES)
    expression = np.zeros((len(values), L.N_BLENDSHAPES))
    expression[:, _LIVE_LINK_INDEX] = values[:, :n_bs]
    rot = values[:, n_bs:n_bs + len(ROTATION_COLUMNS)]
    extra = values[:, n_bs + len(ROTATION_COLUMNS):]
    head = np.zeros((len(values), len(HEAD_FIELDS)))
    head[:, :3] = np.nan_to_num(np.degrees(rot[:, :3]))
    head[:, 3] = np.nan_to_num(extra[:, 0])
    head[:, 4] = np.nan_to_num(extra[:, 1])
    head[:, 5] = np.where(np.isnan(extra[:, 2]), 1.0, extra[:, 2])
    eyes = np.nan_to_num(np.stack([rot[:, [3, 6]].mean(1), rot[:, [4, 7]].mean(1)], 1))
    gaze = np.where(np.isnan(extra[:, 3:5]), np.sin(eyes) / EYE_WIDTH_PER_RADIUS, extra[:, 3:5])
    return expression, head, gaze


def _parse_timecode(cell: str, path: Path, line: int) -> tuple[int, int]:
    match = TIMECODE.match(cell.strip())
    if not match:
        raise _bad(path, f"line {line}: timecode {cell.strip()[:40]!r} is not HH:MM:SS:FF or HH:MM:SS:FF.mmm")
    hh, mm, ss, ff = (int(match.group(k)) for k in range(1, 5))
    if mm >= 60 or ss >= 60:
        raise _bad(path, f"line {line}: timecode {cell!r} has minutes or seconds above 59")
    return hh * 3600 + mm * 60 + ss, ff


def _frame_fractions(rows: list[list[str]], col: int) -> np.ndarray:
    """The sub-frame part after the point, as a fraction of a frame."""
    out = []
    for row in rows:
        sub = TIMECODE.match(row[col].strip()).group(5)
        out.append(float(f"0.{sub}") if sub else 0.0)
    return np.array(out)


def _timecode_rate(seconds: np.ndarray, frames: np.ndarray, default_fps: float) -> float:
    """Frames per second the timecode's FF counts in: the smallest standard rate above the largest FF
    when the file crosses a second boundary, else `default_fps` (if the FFs fit in it)."""
    top = int(frames.max()) + 1
    if len(np.unique(seconds)) == 1 and default_fps >= top:
        return float(default_fps)
    for rate in TIMECODE_RATES:
        if rate >= top:
            return float(rate)
    return float(top)


def _checked_motion(expression: np.ndarray, head: np.ndarray, gaze: np.ndarray, path: Path) -> Motion:
    for name, arr in (("expression", expression), ("head", head), ("gaze", gaze)):
        if not np.all(np.isfinite(arr)):
            raise _bad(path, f"{name} values must be finite numbers")
    if expression.min() < -1e-6 or expression.max() > 1 + 1e-6:
        raise _bad(path, "blendshape values must lie in 0..1")
    if np.any(head[:, HEAD_FIELDS.index("scale")] <= 0):
        raise _bad(path, "HeadScale must be positive")
    return Motion(expression.astype(np.float32), head.astype(np.float32), gaze.astype(np.float32))
