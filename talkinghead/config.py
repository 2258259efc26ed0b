"""Option dataclasses: the one source of every default (the CLI and the Python API read these)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class RenderConfig:
    """How frames are drawn."""

    size: int = 512  # long side of the output, pixels (smaller portraits are not upscaled)


@dataclass(frozen=True)
class MotionConfig:
    """The audio-driven motion source."""

    seed: int = 0  # same seed, same audio -> identical motion
    blink_rate: float = 17.0  # mean blinks per minute (people blink 15-20 times a minute)
    head_amplitude: float = 1.0  # scale of head rotation and sway (0 holds the head still)
    head_speed: float = 1.0  # scale of how fast idle head motion drifts
    mouth_amplitude: float = 1.0  # scale of jaw and lip motion
    gaze_saccades: bool = True  # small eye movements around the camera direction
    lookahead_frames: int = 2  # frames of future audio used for anticipation (latency in streaming)
    mouth: str = "speech"  # mouth motion from: "speech" (learned, Whisper encoder; 0.9 s latency live) or "loudness" (rules)
    mouth_model: str = ""  # a trained mouth model (.npz from scripts/train_mouth_model.py); empty: the bundled one
    silence_mouth: str = "closed"  # where the speech mouth rests in pauses: "closed" lips, or the "portrait"'s own mouth


@dataclass(frozen=True)
class ControlConfig:
    """Controls applied to the final motion, whatever drives it (a direction file can keyframe each)."""

    gaze: str | None = None  # eye direction: camera, left, right, up, down (image directions) or X,Y in eye widths; None = as the motion source moves them
    distance: float = 1.0  # head distance from the camera relative to the portrait's: 1.25 is farther (smaller face), 0.8 nearer
    emotion: str = "neutral"  # expression preset: neutral, happy, sad, angry, surprised
    emotion_intensity: float = 1.0  # strength of the emotion preset (0 to 1.5)
    expression_scale: float = 1.0  # scale of every expression change from the portrait's own (not blinks or gaze)


@dataclass(frozen=True)
class MixConfig:
    """Mixed audio + video control with a driving video: per face region, a gate and an amplitude.

    A gate is the video's share of a region: 0 = audio-driven, 1 = video-driven, between = a
    weighted mix. Region amplitudes scale the final motion of a region with or without a driver.
    """

    mouth_gate: float | None = None  # jaw and lips; None = audio when separate speech is given, else video
    eyes_gate: float = 1.0  # blinks and lid squint / widen
    gaze_gate: float = 1.0  # eye direction
    brows_gate: float = 1.0  # brows (and nose)
    head_gate: float = 1.0  # head pose
    audio_amplitude: float = 1.0  # scale of all audio-driven motion before mixing
    video_amplitude: float = 1.0  # scale of all video-driven motion before mixing
    mouth_amplitude: float = 1.0  # final scale of the mouth region's motion
    eyes_amplitude: float = 1.0  # final scale of blinks and lid motion
    gaze_amplitude: float = 1.0  # final scale of eye movements
    brows_amplitude: float = 1.0  # final scale of brow motion
    head_amplitude: float = 1.0  # final scale of head rotation and sway
    reference: str = "first"  # driving-video frame its motion is measured from: first, or neutral (least expression)


@dataclass(frozen=True)
class GenerateConfig:
    """Everything `generate` needs besides the input files."""

    fps: int = 25  # output frames per second
    render: RenderConfig = field(default_factory=RenderConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    controls: ControlConfig = field(default_factory=ControlConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    chunk_seconds: float = 1.0  # audio is processed in chunks of this length (memory stays flat)
    crf: int = 18  # H.264 quality (lower is better, 18 is visually lossless)


def option_help(cls) -> dict[str, str]:
    """Field name -> the comment after it in this file (used for --help)."""
    import inspect

    source = inspect.getsource(cls)
    helps = {}
    for f in fields(cls):
        for line in source.splitlines():
            stripped = line.strip()
            if stripped.startswith(f"{f.name}:") and "#" in stripped:
                helps[f.name] = stripped.split("#", 1)[1].strip()
    return helps
