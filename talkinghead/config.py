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


@dataclass(frozen=True)
class GenerateConfig:
    """Everything `generate` needs besides the input files."""

    fps: int = 25  # output frames per second
    render: RenderConfig = field(default_factory=RenderConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
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
