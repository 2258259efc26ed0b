"""Direction files: keyframe any control over time ("smile from 2.0 s to 4.0 s, look left at 5 s").

A JSON (.json) or YAML (.yaml, .yml) file with a list of events; times are seconds of the output:

    ease: 0.3                  # optional: seconds each change takes to blend in (default EASE_SECONDS)
    events:
      - {from: 2.0, to: 4.0, emotion: happy, intensity: 0.8}   # a span: back to the previous value after `to`
      - {at: 5.0, gaze: left}                                   # a change that lasts
      - {at: 7.5, gaze: free, distance: 1.2, ease: 1.0}         # several controls at once, its own ease

Controls: emotion (neutral, happy, sad, angry, surprised) with intensity (0-1.5, default 1),
gaze (camera, left, right, up, down, free, or [x, y] in eye widths), distance, expression_scale,
<region>_amplitude and <region>_gate for the regions mouth, eyes, gaze, brows, head (gates need a
driving video). Before its first event a control has its configured value (command line / config).
Two events may not change the same control while one of them is still in force or blending in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import TalkingHeadError
from .io import read_text_file
from .config import SCALE_RANGE
from .motion.controls import DISTANCE_RANGE, EMOTIONS, MAX_EMOTION_INTENSITY, Direction, Track, parse_gaze
from .motion.mixer import REGIONS

EASE_SECONDS = 0.3
MAX_EASE_SECONDS = 10.0
TIME_KEYS = ("at", "from", "to", "ease")
CONTROL_KEYS = (("emotion", "intensity", "gaze", "distance", "expression_scale")
                + tuple(f"{r}_amplitude" for r in REGIONS) + tuple(f"{r}_gate" for r in REGIONS))
DEFAULT = float("nan")  # keyframe value meaning 'the configured value'
MAX_DIRECTION_BYTES = 1_000_000  # a direction file is a short list of events
MAX_QUOTED_CHARS = 60  # longest piece of the user's file quoted in an error message
MAX_PROBLEM_CHARS = 400  # longest description of a problem in a direction file


def _quote(value) -> str:
    """repr(value), cut to MAX_QUOTED_CHARS characters for an error message."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[:MAX_QUOTED_CHARS - 3] + "..."


def load_direction(path: str | os.PathLike) -> Direction:
    """Parse and validate a direction file (see module docstring) -> Direction."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise TalkingHeadError(f"direction file '{path}' must end in .json, .yaml or .yml")
    if path.is_file() and path.stat().st_size > MAX_DIRECTION_BYTES:
        raise TalkingHeadError(f"direction file '{path}' is {path.stat().st_size / 1e6:.1f} MB; at most "
                               f"{MAX_DIRECTION_BYTES / 1e6:.0f} MB: a direction is a short list of events")
    text = read_text_file(path, "direction file", "a UTF-8 text file")
    try:
        data = _parse_json(text, path) if suffix == ".json" else _parse_yaml(text, path)
    except RecursionError:
        raise TalkingHeadError(f"direction file '{path}' is nested too deeply: a direction is a list of "
                               "events, each a flat mapping") from None
    return parse_direction(data, str(path))


def _parse_json(text: str, path: Path):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TalkingHeadError(f"direction file '{path}': not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _parse_yaml(text: str, path: Path):
    """YAML -> data with the safe loader, refusing aliases (*name), which can expand without limit."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in direction "
                                                  "files: write each value out", self.peek_event().start_mark)
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = str(getattr(exc, "problem", None) or exc)[:2 * MAX_QUOTED_CHARS]
        raise TalkingHeadError(f"direction file '{path}': not valid YAML{where}: {problem}") from None


def parse_direction(data, name: str = "direction") -> Direction:
    """A direction already loaded from JSON / YAML (dict with 'events', or a bare list of events) -> Direction."""
    def bad(problem: str) -> TalkingHeadError:
        if len(problem) > MAX_PROBLEM_CHARS:  # a value quoted by another module's message
            problem = problem[:MAX_PROBLEM_CHARS - 3] + "..."
        return TalkingHeadError(f"direction file '{name}': {problem}")

    if isinstance(data, list):
        data = {"events": data}
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise bad("expected a list of events, or a mapping with 'events: [...]' (see the README's direction-file format)")
    unknown = set(data) - {"events", "ease"}
    if unknown:
        raise bad(f"unknown top-level key(s) {_quote(sorted(map(str, unknown)))}: use 'events' and 'ease'")
    ease = _seconds(data.get("ease", EASE_SECONDS), "ease", bad, upper=MAX_EASE_SECONDS)
    changes: dict[str, list[tuple[float, float | None, float, float, int]]] = {}  # key -> (start, end, value, ease, event)
    for number, event in enumerate(data["events"], start=1):
        for key, start, end, value, event_ease in _event_changes(event, number, ease, bad):
            changes.setdefault(key, []).append((start, end, value, event_ease, number))
    return Direction({key: _track(key, events, bad) for key, events in changes.items()})


def _seconds(value, what: str, bad, upper: float = np.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or not 0 <= value <= upper:
        limit = "" if upper == np.inf else f" up to {upper:g}"
        raise bad(f"{what} must be a number of seconds, 0{limit} (got {_quote(value)})")
    return float(value)


def _number(value, what: str, bounds: tuple[float, float], bad) -> float:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or not lo <= value <= hi:
        raise bad(f"{what} must be a number from {lo:g} to {hi:g} (got {_quote(value)})")
    return float(value)


def _event_changes(event, number: int, ease: float, bad):
    """One event -> [(track key, start, end or None, value, ease)]."""
    where = f"event {number}"
    if not isinstance(event, dict):
        raise bad(f"{where} must be a mapping like {{at: 5.0, gaze: left}} (got {_quote(event)})")
    unknown = [k for k in event if k not in TIME_KEYS + CONTROL_KEYS]
    if unknown:
        raise bad(f"{where}: unknown key {_quote(unknown[0])}: controls are {', '.join(CONTROL_KEYS)}; "
                  "times are 'at', or 'from' and 'to'")
    if ("at" in event) == ("from" in event):
        raise bad(f"{where}: give either 'at' (a lasting change) or 'from' and 'to' (a span)")
    if "from" in event and "to" not in event:
        raise bad(f"{where}: a span needs 'to' as well as 'from'")
    if "to" in event and "from" not in event:
        raise bad(f"{where}: 'to' needs 'from' (use 'at' for a lasting change)")
    start = _seconds(event.get("at", event.get("from")), f"{where}: the time", bad)
    end = None
    if "to" in event:
        end = _seconds(event["to"], f"{where}: 'to'", bad)
        if end <= start:
            raise bad(f"{where}: 'to' ({end:g} s) must be after 'from' ({start:g} s)")
    event_ease = _seconds(event.get("ease", ease), f"{where}: ease", bad, upper=MAX_EASE_SECONDS)
    controls = [k for k in event if k in CONTROL_KEYS]
    if not controls:
        raise bad(f"{where}: no control to change (use one of {', '.join(CONTROL_KEYS)})")
    if "intensity" in event and "emotion" not in event:
        raise bad(f"{where}: 'intensity' needs 'emotion' in the same event")
    out = []
    for key in controls:
        value = event[key]
        if key == "intensity":
            continue
        if key == "emotion":
            if not isinstance(value, str) or value not in EMOTIONS:
                raise bad(f"{where}: unknown emotion {_quote(value)}: use one of {', '.join(EMOTIONS)}")
            intensity = _number(event.get("intensity", 1.0), f"{where}: intensity", (0.0, MAX_EMOTION_INTENSITY), bad)
            for name in EMOTIONS:
                if name != "neutral":
                    out.append((f"emotion_{name}", start, end, intensity if name == value else 0.0, event_ease))
        elif key == "gaze":
            try:
                target = parse_gaze(value)
            except TalkingHeadError as exc:
                raise bad(f"{where}: {exc}") from None
            if target is None:
                out.append(("gaze_weight", start, end, 0.0, event_ease))
            else:
                out += [("gaze_x", start, end, target[0], event_ease), ("gaze_y", start, end, target[1], event_ease),
                        ("gaze_weight", start, end, 1.0, event_ease)]
        elif key == "distance":
            out.append((key, start, end, _number(value, f"{where}: distance", DISTANCE_RANGE, bad), event_ease))
        elif key.endswith("_gate"):
            out.append((key, start, end, _gate(value, f"{where}: {key}", bad), event_ease))
        else:
            out.append((key, start, end, _number(value, f"{where}: {key}", SCALE_RANGE, bad), event_ease))
    return out


def _gate(value, what: str, bad) -> float:
    if value in ("audio", "video"):
        return 0.0 if value == "audio" else 1.0
    return _number(value, f"{what} (audio, video, or the video's share)", (0.0, 1.0), bad)


def _track(key: str, events: list, bad) -> Track:
    """Keyframes of one control from its changes, in time order, each blending in over its ease."""
    events = sorted(events, key=lambda e: e[0])
    times, values = [0.0], [DEFAULT]
    busy_until, busy_event = -np.inf, 0
    for start, end, value, ease, number in events:
        if start < busy_until:
            control = "emotion" if key.startswith("emotion_") else "gaze" if key in ("gaze_x", "gaze_y", "gaze_weight") else key
            raise bad(f"event {number} changes {control} at {start:g} s while event {busy_event} still does "
                      f"(until {busy_until:g} s): move it later or merge the two")
        before = values[-1]  # events do not overlap: the track is flat at its last value by now
        times += [start, start + ease]
        values += [before, value]
        busy_until, busy_event = start + ease, number
        if end is not None:
            times += [end, end + ease]
            values += [value, before]
            busy_until = end + ease
    return _monotonic(times, values)


def _monotonic(times: list[float], values: list[float]) -> Track:
    """Keyframes with equal times nudged apart (a zero ease is a step), as a Track."""
    t = np.array(times, np.float64)
    for i in range(1, len(t)):
        if t[i] <= t[i - 1]:
            t[i] = np.nextafter(t[i - 1], np.inf)
    return Track(t, np.array(values, np.float64))
