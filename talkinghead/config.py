"""Option dataclasses: the one schema of every option.

Each field carries its default, its type (choices are `Literal[...]`), and in its metadata its help
text, unit and allowed range (see `option`). Constructing a config validates it, so a bad value is
refused in one place with one line naming the field, the value and what is allowed, whichever entry
point it came through. `talkinghead.schema` walks these classes to build the CLI flags, the server's
options and eval's `--variant` settings; nothing else states a default, a choice or a range.
"""

from __future__ import annotations

import functools
import math
import numbers
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Literal

from .errors import TalkingHeadError

SAMPLE_RATE = 16000  # Hz: every audio input is decoded and resampled to this
GAZE_DIRECTIONS = {  # eye widths, image axes (x right, y down); 'camera' = the portrait's own gaze
    "camera": (0.0, 0.0), "left": (-0.3, 0.0), "right": (0.3, 0.0), "up": (0.0, -0.2), "down": (0.0, 0.2),
}
GAZE_FREE = ("free", "none", "")  # gaze values that leave the eyes to the motion source
MAX_GAZE = 0.5  # eye widths: further would push the iris out of the eye
MAX_TEXT_CHARS = 4096  # longest text option (paths)
Emotion = Literal["neutral", "happy", "sad", "angry", "surprised"]
SCALE_RANGE = (0.0, 3.0)  # expression scale and amplitudes (1 = unchanged)


class ConfigError(TalkingHeadError):
    """An option value is of the wrong type, not a choice, or out of range."""

    def __init__(self, path: str, value: Any, allowed: str):
        self.path, self.value, self.allowed = path, value, allowed
        super().__init__(self.describe(path))

    def describe(self, name: str) -> str:
        """The message with the option called `name` (a CLI flag, an API name)."""
        return f"{name} {quote(self.value)} is not allowed: {self.allowed}"


class UnknownOptionError(ConfigError):
    """No option has that name."""

    def describe(self, name: str) -> str:
        return f"unknown option {quote(name)}: {self.allowed}"


def quote(value: Any, limit: int = 60) -> str:
    """repr() of a value for a message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def option(default: Any, help: str, *, range: tuple[float, float] | None = None, unit: str = "",
           default_text: str = "", flag: str | None = None, group: tuple[str, str] | None = None,
           aliases: dict[str, Any] | None = None, internal: bool = False, needs_driving: bool = False,
           check=None, allowed: str = "", suffix_field: str = "", served: bool = True) -> Any:
    """A config field with its schema.

    help: one line for --help, the API and the page; range: (min, max) of a number, inclusive;
    unit: shown after numbers; default_text: how to describe the default when it is None or empty;
    flag: the CLI flag when it is not `--field-name` (None: derived); group: (flag, key) to set it
    through a repeatable `--flag key=value` option instead of a flag of its own; aliases: words that
    stand for values ("audio" -> 0.0); internal: not offered by the CLI or the server (eval and the
    Python API can set it); needs_driving: only acts with a driving video; check: extra validator
    value -> None raising ValueError with what is allowed; allowed: what a text option takes, in words;
    served: whether the server offers it (it runs its own processes); suffix_field: a sibling field that the CLI
    value's part after ':' sets (`--emotion happy:0.8`).
    """
    meta = {"help": help, "range": range, "unit": unit, "default_text": default_text, "flag": flag,
            "group": group, "aliases": aliases or {}, "internal": internal, "needs_driving": needs_driving,
            "check": check, "allowed": allowed, "suffix_field": suffix_field, "served": served}
    return field(default=default, metadata=meta)


def check_gaze(value: str | None) -> None:
    """Gaze values: a direction word, 'free', or 'X,Y' in eye widths within +-MAX_GAZE."""
    parse_gaze(value)


GAZE_ALLOWED = f"{', '.join(GAZE_DIRECTIONS)}, free, or X,Y in eye widths within +-{MAX_GAZE} (e.g. 0.2,-0.1)"


def parse_gaze(value) -> tuple[float, float] | None:
    """'camera' / 'left' / ... / 'X,Y' / (x, y) / None -> iris offset in eye widths, or None (free)."""
    allowed = "use " + GAZE_ALLOWED
    if value is None or (isinstance(value, str) and value.strip().lower() in GAZE_FREE):
        return None
    if isinstance(value, str):
        key = value.strip().lower()
        if key in GAZE_DIRECTIONS:
            return GAZE_DIRECTIONS[key]
        parts = key.split(",")
    else:
        parts = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        x, y = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(allowed) from None
    if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > MAX_GAZE:
        raise ValueError(allowed)
    return (x, y)


class Validated:
    """Mixin: a dataclass whose fields are checked against their schema when it is made."""

    SECTION = ""  # the path of this config in GenerateConfig ("motion", ...), "" for the top

    def __post_init__(self) -> None:
        hints = field_types(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            if is_dataclass(value):
                continue
            path = f"{self.SECTION}.{f.name}" if self.SECTION else f.name
            problem = check_value(hints[f.name], f.metadata, value)
            if problem:
                raise ConfigError(path, value, problem)


@functools.lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """A config class's resolved field annotations (resolved once per class)."""
    return typing.get_type_hints(cls)


def check_value(hint: Any, meta: typing.Mapping, value: Any) -> str:
    """'' if `value` fits the field's type and schema, else what is allowed."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return ""
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        return "" if value in choices else f"use one of {', '.join(map(str, choices))}"
    if hint is bool:
        return "" if isinstance(value, bool) else "use true or false"
    if hint in (int, float):
        return _check_number(hint, meta, value)
    if hint is str:
        if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
            return f"use text of at most {MAX_TEXT_CHARS} characters"
    if meta.get("check") is not None:
        try:
            meta["check"](value)
        except ValueError as exc:
            return str(exc)
    return ""


def _check_number(hint: type, meta: typing.Mapping, value: Any) -> str:
    lo, hi = meta.get("range") or (-math.inf, math.inf)
    unit = f" {meta['unit']}" if meta.get("unit") else ""
    span = f"from {fmt(lo)} to {fmt(hi)}{unit}"
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return f"use a whole number {span}"
    elif isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return f"use a number {span}"
    return "" if lo <= value <= hi else f"use a {'whole ' if hint is int else ''}number {span}"


def fmt(x: float) -> str:
    """A bound for a message: 3 not 3.0, 2147483647 in full."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class RenderConfig(Validated):
    """How frames are drawn."""

    SECTION = "render"
    size: int = option(512, "long side of the output; smaller portraits are not upscaled", range=(64, 4096),
                       unit="px")
    background: Literal["plate", "stretch"] = option(
        "plate", "behind a moving head: plate (the person is cut out once and the background behind filled in, "
        "so it stays still; needs the person segmenter, see the README) or stretch (the background near the "
        "head moves with it)")
    face_depth: float = option(
        1.5, "depth of the face the head turns, over the landmarker's own depth: a turn or nod moves the "
        "nose and the outline this much more against each other (a picture that turns without new shading "
        "or a revealed far side reads as turned less than asked; see docs/renderer.md)", range=(0.5, 2.0))


@dataclass(frozen=True)
class MotionConfig(Validated):
    """The audio-driven motion source."""

    SECTION = "motion"
    seed: int = option(0, "same seed and audio give identical motion (blinks, gaze, idle head motion)",
                       range=(0, 2**31 - 1))
    blink_rate: float = option(17.0, "mean blinks per minute (people blink 15-20 times a minute)", range=(0, 60),
                               unit="per minute")
    head_amplitude: float = option(1.0, "scale of the generated head motion: sway, lean and nods (0 holds it "
                                   "still); --amplitude head= scales the final head motion instead",
                                   range=SCALE_RANGE)
    head_speed: float = option(1.0, "scale of how fast the head moves: the rules' idle drift, or the learned "
                               "generator's quicker movements (its slow sway kept; 0.5 gives about 0.75 of the "
                               "speed)", range=SCALE_RANGE)
    mouth_amplitude: float = option(1.0, "scale of the generated jaw and lip motion; --amplitude mouth= scales the "
                                    "final mouth motion instead", range=SCALE_RANGE)
    gaze_saccades: bool = option(True, "small eye movements around the camera direction")
    lookahead_frames: int = option(2, "frames of future audio used for anticipation (each adds one frame of "
                                   "latency in live sessions)", range=(0, 2), unit="frames")
    mouth: Literal["speech", "loudness"] = option(
        "speech", "mouth motion from: speech (learned from the voice; decides a frame 0.9 s after its audio) or "
        "loudness (rules; no extra latency)")
    mouth_model: str = option("", "a trained mouth model (.npz from scripts/train_mouth_model.py)",
                              default_text="the bundled model", flag="--mouth-model")
    silence_mouth: Literal["closed", "portrait"] = option(
        "closed", "where the speech mouth rests in pauses: closed lips, or the portrait's own mouth")
    generator: Literal["rules", "diffusion", "diffusion-live"] = option(
        "rules", "head, blinks, gaze and brows from: rules (seeded schedules and prosody), diffusion (the learned "
        "motion model, 2 s windows) or diffusion-live (its causal version, 80 ms windows, for live sessions); "
        "the mouth always comes from --mouth")
    motion_model: str = option("", "a trained motion model (.npz from `talkinghead train motion`) for the diffusion "
                               "generators", default_text="the bundled model", flag="--motion-model")
    diffusion_steps: int = option(10, "sampling steps of the diffusion generators (more: slower, see the README's "
                                  "steps table)", range=(1, 100))
    sampler: Literal["dpmpp_2m", "euler", "heun"] = option(
        "dpmpp_2m", "diffusion sampler: DPM-Solver++(2M), Euler or Heun (Heun costs two network calls a step)")
    rest_conditioning: bool = option(
        False, "let the diffusion generator read the portrait's rest expression (off by default: trained on 25 "
        "speakers, it made motion jittery for faces unlike theirs; off uses the branch trained without it)")
    audio_guidance: float = option(1.0, "classifier-free guidance on the audio: 1 samples the conditioned model, "
                                   "above 1 follows the voice more (two network calls a step)", range=(0.0, 5.0))
    control_guidance: float = option(1.0, "classifier-free guidance on the model's head-control inputs, held at "
                                     "the training median (--head-amplitude and --head-speed act on its output): 1 "
                                     "samples the conditioned model, above 1 keeps closer to a median head (one more "
                                     "network call a step)", range=(0.0, 5.0))


@dataclass(frozen=True)
class ControlConfig(Validated):
    """Controls applied to the final motion, whatever drives it (a direction file can keyframe each)."""

    SECTION = "controls"
    gaze: str | None = option(None, "where the eyes look: a direction in the image, or an iris offset X,Y in eye "
                              "widths", default_text="free: as the motion source moves them",
                              check=check_gaze, allowed=GAZE_ALLOWED)
    distance: float = option(1.0, "head distance from the camera relative to the portrait's: 1.25 is farther "
                             "(smaller face), 0.8 nearer", range=(0.5, 2.0))
    emotion: Emotion = option("neutral", "expression preset; NAME:INTENSITY sets its strength too",
                              suffix_field="emotion_intensity")
    emotion_intensity: float = option(1.0, "strength of the emotion preset", range=(0.0, 1.5))
    expression_scale: float = option(1.0, "scale of every expression change from the portrait's own (not blinks "
                                     "or gaze)", range=SCALE_RANGE)


GATE_ALIASES = {"audio": 0.0, "video": 1.0}  # words for a gate's two ends


def _gate(region: str, default: float | None, what: str, **extra) -> Any:
    return option(default, f"who drives the {what}: audio, video, or the video's share from 0 to 1",
                  range=(0.0, 1.0), group=("--gate", region), aliases=GATE_ALIASES, needs_driving=True, **extra)


def _amplitude(name: str, help: str, **extra) -> Any:
    return option(1.0, help, range=SCALE_RANGE, group=("--amplitude", name), **extra)


@dataclass(frozen=True)
class MixConfig(Validated):
    """Mixed audio + video control with a driving video: per face region, a gate and an amplitude.

    A gate is the video's share of a region: 0 = audio-driven, 1 = video-driven, between = a
    weighted mix. Region amplitudes scale the final motion of a region with or without a driver.
    """

    SECTION = "mix"
    mouth_gate: float | None = _gate("mouth", None, "jaw and lips",
                                     default_text="audio when separate speech is given, else video")
    eyes_gate: float = _gate("eyes", 1.0, "blinks and lid squint / widen")
    gaze_gate: float = _gate("gaze", 1.0, "eye direction")
    brows_gate: float = _gate("brows", 1.0, "brows (and nose)")
    head_gate: float = _gate("head", 1.0, "head pose")
    audio_amplitude: float = _amplitude("audio", "scale of all audio-driven motion, before mixing")
    video_amplitude: float = _amplitude("video", "scale of all video-driven motion, before mixing", needs_driving=True)
    mouth_amplitude: float = _amplitude("mouth", "final scale of the mouth's motion, whatever drives it")
    eyes_amplitude: float = _amplitude("eyes", "final scale of blinks and lid motion")
    gaze_amplitude: float = _amplitude("gaze", "final scale of eye movements")
    brows_amplitude: float = _amplitude("brows", "final scale of brow motion")
    head_amplitude: float = _amplitude("head", "final scale of head rotation and sway, whatever drives it")
    reference: Literal["first", "neutral"] = option(
        "first", "driving-video frame its motion is measured from: first, or neutral (least expression)",
        needs_driving=True)


@dataclass(frozen=True)
class GenerateConfig(Validated):
    """Everything `generate` needs besides the input files."""

    fps: int = option(25, "output frames per second", range=(1, 60))
    render: RenderConfig = field(default_factory=RenderConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    controls: ControlConfig = field(default_factory=ControlConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    chunk_seconds: float = option(1.0, "audio is processed in chunks of this length (memory stays flat)",
                                  range=(0.04, 10.0), unit="s", internal=True)
    crf: int = option(18, "H.264 quality: lower is better, 18 is visually lossless", range=(0, 51))
    threads: int = option(1, "CPU threads for the numerical libraries (BLAS, OpenCV) while generating; 0 lets "
                          "them use every core", range=(0, 256), served=False)


# Named configurations: an entry point starts from one of these instead of writing its own defaults.
PRESETS: dict[str, GenerateConfig] = {
    "default": GenerateConfig(),
    # live sessions: the loudness mouth decides a frame with no extra latency (the speech mouth needs 0.9 s)
    "live": GenerateConfig(motion=MotionConfig(mouth="loudness")),
}


def preset_changes(name: str) -> dict[str, Any]:
    """{option path: value} where preset `name` differs from the defaults."""
    return _differences(PRESETS["default"], PRESETS[name], "")


def _differences(base: Any, other: Any, prefix: str) -> dict[str, Any]:
    changed = {}
    for f in fields(base):
        a, b = getattr(base, f.name), getattr(other, f.name)
        if is_dataclass(a):
            changed.update(_differences(a, b, f"{prefix}{f.name}."))
        elif a != b:
            changed[prefix + f.name] = b
    return changed


def option_help(cls) -> dict[str, str]:
    """Field name -> its help: the schema's, else the comment after the field in the class's source."""
    import inspect

    helps = {f.name: f.metadata["help"] for f in fields(cls) if "help" in f.metadata}
    source = inspect.getsource(cls)
    for f in fields(cls):
        for line in source.splitlines():
            stripped = line.strip()
            if f.name not in helps and stripped.startswith(f"{f.name}:") and "#" in stripped:
                helps[f.name] = stripped.split("#", 1)[1].strip()
    return helps


def default_of(name: str, cls: type | None = None) -> Any:
    """The default of field `name` of config class `cls` (GenerateConfig when None)."""
    return next(field_default(f) for f in fields(cls or GenerateConfig) if f.name == name)


def spec_range(cls: type, name: str) -> tuple[float, float]:
    """The (min, max) range of field `name` of config class `cls`."""
    return next(f.metadata["range"] for f in fields(cls) if f.name == name)


def field_default(f) -> Any:
    """A dataclass field's default value (calling its factory)."""
    return f.default_factory() if f.default is MISSING else f.default


