"""The only module that wires the stages: files -> arrays -> portrait + audio features -> motion -> frames -> file.

`Pipeline.stream(chunks)` turns PCM chunks into frames incrementally (a generator), which both the
offline `generate` and a live mode use; memory stays flat for any audio length.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .audio.features import SAMPLE_RATE, FeatureStream, frame_count
from .config import GenerateConfig
from .threads import compute_threads, with_compute_threads
from .errors import TalkingHeadError
from .face.cache import portrait_face
from .face.landmarker import FaceObservation
from .io import BackgroundVideoWriter, audio_summary, iter_audio, load_audio, load_image, resize_long_side
from .face.measure import CLOSED_LIPS_GAP, mouth_aperture
from .motion.base import MotionSource
from .motion.compose import audio_motion_source, build_motion_source
from .motion.controls import Direction
from .motion.recorded import RecordedMotion
from .motion.types import Motion
from .motion.video_driven import DrivingMotion
from .render.renderer import Renderer

log = logging.getLogger(__name__)

SILENT_PEAK = 10 ** (-55 / 20)  # audio whose peak stays below -55 dBFS is treated as silent
MAX_AUDIO_SECONDS = 4 * 3600
FIRST_CHUNK_SECONDS = 0.25  # the first audio chunk of a clip: its first frame comes after this much work


@dataclass(frozen=True)
class Portrait:
    """A portrait ready to animate: image (H, W, 3) uint8 RGB at output size, and its face."""

    image: np.ndarray
    face: FaceObservation


def prepare_portrait(image: np.ndarray, size: int, name: str = "portrait") -> Portrait:
    """Resize to the output size (long side <= size, even dimensions) and find the face to animate."""
    resized = resize_long_side(image, size)
    downscale = max(resized.shape[:2]) / max(image.shape[:2])
    return Portrait(resized, portrait_face(resized, name, downscale))


def decision_delay_seconds(config: GenerateConfig) -> float:
    """Audio needed past a frame's centre before the frame is decided (the streaming latency that the
    motion source adds): the learned mouth's encoder latency, or the feature window plus look-ahead."""
    from .audio.features import WINDOW_FRAMES

    source = audio_motion_source(config.motion)
    latency = getattr(source, "latency_s", None)
    if latency is not None:
        return float(latency)
    return (WINDOW_FRAMES / 2 + max(config.motion.lookahead_frames, 0)) / config.fps


def check_audio(audio: np.ndarray, name: str = "audio") -> None:
    """Reject empty, silent or absurdly long audio with a clear message."""
    _check_audio_size(audio.size, float(np.max(np.abs(audio))) if audio.size else 0.0, name)


def check_audio_file(path: str | Path, name: str | None = None) -> int:
    """check_audio for a file, decoded in a stream (memory flat in its length); returns its sample count."""
    summary = audio_summary(path, SAMPLE_RATE)
    _check_audio_size(summary.samples, summary.peak, name or f"'{path}'")
    return summary.samples


def _check_audio_size(samples: int, peak: float, name: str) -> None:
    if samples == 0:
        raise TalkingHeadError(f"{name} is empty: use a recording with speech in it")
    if samples > MAX_AUDIO_SECONDS * SAMPLE_RATE:
        raise TalkingHeadError(f"{name} is longer than {MAX_AUDIO_SECONDS // 3600} hours: split it into parts")
    if peak < SILENT_PEAK:
        raise TalkingHeadError(f"{name} is silent (peak below -55 dBFS): use a recording with audible speech")


class Pipeline:
    """One portrait, ready to be driven by any number of audio clips."""

    def __init__(self, portrait: Portrait, config: GenerateConfig = GenerateConfig(),
                 motion_source: MotionSource | None = None, *, driving: DrivingMotion | None = None,
                 direction: Direction | None = None):
        """`motion_source` drives the audio side (default: from config.motion); `driving` adds a driving
        video's motion, mixed per region (config.mix); config.controls and `direction` act on the result
        (`motion_stack`, motion/compose.py)."""
        self.portrait = portrait
        self.config = config
        self.renderer = Renderer(portrait.image, portrait.face, config.render)
        lips_closed = bool(mouth_aperture(portrait.face.landmarks) < CLOSED_LIPS_GAP)
        self.motion_source = motion_source or audio_motion_source(config.motion, portrait_lips_closed=lips_closed)
        self.motion_stack = build_motion_source(self.motion_source, config, driving, direction)

    @classmethod
    def from_image(cls, image: np.ndarray | str | Path, config: GenerateConfig = GenerateConfig(),
                   motion_source: MotionSource | None = None, **motion) -> "Pipeline":
        """Build from an image array (H, W, 3) uint8 RGB or an image file path (`motion`: driving, direction)."""
        name = "portrait"
        if not isinstance(image, np.ndarray):
            name = f"'{image}'"
            image = load_image(image)
        return cls(prepare_portrait(image, config.render.size, name), config, motion_source, **motion)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the output frames."""
        return self.renderer.size

    def stream_motion(self, chunks: Iterable[np.ndarray]) -> Iterator[Motion]:
        """PCM chunks (float32 mono, SAMPLE_RATE) -> runs of Motion, as soon as each is decided."""
        features = FeatureStream(self.config.fps)
        self.motion_stack.start(self.portrait.face.blendshapes, self.config.fps)
        for chunk in chunks:
            motion = self.motion_stack.push(features.push(chunk))
            if len(motion):
                yield motion
        tail = Motion.concat([self.motion_stack.push(features.flush()), self.motion_stack.flush()])
        if len(tail):
            yield tail

    def stream(self, chunks: Iterable[np.ndarray],
               motion_sink: Callable[[Motion], None] | None = None) -> Iterator[np.ndarray]:
        """PCM chunks -> frames (H, W, 3) uint8 RGB, one per 1/fps of audio, incrementally
        (`motion_sink` receives each run of Motion before it is drawn). While it runs, the numerical
        libraries use config.threads threads (see talkinghead.threads)."""
        with compute_threads(self.config.threads):
            for motion in self.stream_motion(chunks):
                if motion_sink is not None:
                    motion_sink(motion)
                for i in range(len(motion)):
                    yield self.renderer.render_frame(motion.expression[i], motion.head[i], motion.gaze[i])

    def chunks(self, audio: np.ndarray) -> Iterator[np.ndarray]:
        """Split a whole clip into the configured chunk length."""
        step = max(1, int(self.config.chunk_seconds * SAMPLE_RATE))
        for start in range(0, len(audio), step):
            yield audio[start:start + step]

    def write(self, audio: np.ndarray | str | Path, out: str | Path,
              progress: Callable[[int, int], None] | None = None,
              motion_sink: Callable[[Motion], None] | None = None, *,
              checked_samples: int | None = None) -> "GenerateResult":
        """Render `audio` (float32 mono array at SAMPLE_RATE, or an audio file, decoded in a stream) to an
        MP4 at `out`; written atomically. `checked_samples`: the file's length from check_audio_file."""
        if isinstance(audio, np.ndarray):
            check_audio(audio)
            samples, chunks = len(audio), _quick_start(self.chunks(audio))
        else:
            samples = checked_samples if checked_samples is not None else check_audio_file(audio)
            chunks = _quick_start(iter_audio(audio, self.config.chunk_seconds, SAMPLE_RATE))
        total = frame_count(samples, self.config.fps)
        width, height = self.frame_size
        started = time.perf_counter()
        count = 0
        with BackgroundVideoWriter(out, self.config.fps, width, height, sample_rate=SAMPLE_RATE,
                                   crf=self.config.crf, has_audio=True) as writer:
            def heard(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
                for chunk in chunks:  # the sound track is written as the frames it decides are drawn
                    writer.write_audio(chunk)
                    yield chunk
            for frame in self.stream(heard(chunks), motion_sink):
                writer.write(frame)
                count += 1
                if progress is not None:
                    progress(count, total)
        seconds = time.perf_counter() - started
        return GenerateResult(Path(out), count, width, height, samples / SAMPLE_RATE, seconds)


def _quick_start(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The chunks with the first split after FIRST_CHUNK_SECONDS, so the first frame is drawn sooner (the
    motion and the frames do not depend on how the audio is chunked)."""
    step = int(FIRST_CHUNK_SECONDS * SAMPLE_RATE)
    for i, chunk in enumerate(chunks):
        if i == 0 and len(chunk) > step:
            yield chunk[:step]
            chunk = chunk[step:]
        yield chunk


@dataclass(frozen=True)
class GenerateResult:
    """What generate wrote."""

    path: Path
    frames: int
    width: int
    height: int
    audio_seconds: float
    elapsed_seconds: float

    @property
    def realtime_factor(self) -> float:
        """Audio seconds per second of work (2.0 = twice as fast as real time)."""
        return self.audio_seconds / max(self.elapsed_seconds, 1e-9)


def load_driving(video: str | Path, config: GenerateConfig = GenerateConfig()) -> DrivingMotion:
    """Track a driving video and retarget its motion relative to its reference frame (config.mix.reference)."""
    from .motion.video_driven import retarget
    from .face.tracking import track_video

    return retarget(track_video(Path(video)), config.mix.reference, name=f"driving video '{video}'")


@with_compute_threads
def generate(image: np.ndarray | str | Path, audio: np.ndarray | str | Path | None, out: str | Path,
             config: GenerateConfig = GenerateConfig(),
             progress: Callable[[int, int], None] | None = None, text: str | None = None, *,
             driving: str | Path | DrivingMotion | None = None, direction: str | Path | Direction | None = None,
             motion_in: str | Path | None = None, motion_out: str | Path | None = None) -> GenerateResult:
    """Portrait (array or file) + speech (float32 mono 16 kHz array, or any audio/video file) -> MP4 at `out`.

    With `audio=None` and `text`, the text is spoken by the built-in offline voice (talkinghead.tts).
    `driving`: a driving video (file, or `load_driving`'s result) mixed in per config.mix; with no
    audio and no text, its own sound track is the speech and (mouth gate unset) it drives the mouth too.
    `direction`: a direction file (JSON / YAML) or Direction keyframing the controls.
    `motion_in`: render a motion file (CSV / JSON) instead of generating motion.
    `motion_out`: also write the motion track (CSV in Live Link Face layout, or JSON, by extension).
    """
    from . import motion_files
    from .direction import load_direction

    _check_outputs(out, motion_out, (image, audio, driving, direction, motion_in))
    if driving is not None and motion_in is not None:
        raise TalkingHeadError("give either a driving video or a motion file to import, not both")
    own_speech = audio is None and text is None
    if driving is not None and own_speech:
        if not isinstance(driving, (str, Path)):
            raise TalkingHeadError("no speech given: pass audio or text with an already tracked driving motion")
        audio = _driving_speech(Path(driving))
    if motion_in is not None and own_speech:
        raise TalkingHeadError("a motion file has no sound: give the speech too (--audio FILE or --text)")
    if isinstance(direction, (str, Path)):
        direction = load_direction(direction)
    if driving is not None and config.mix.mouth_gate is None:
        config = replace(config, mix=replace(config.mix, mouth_gate=1.0 if own_speech else 0.0))
    if audio is not None and text is not None:
        log.warning("the text is not used with a recording: the recording's sound drives the mouth "
                    "(a transcript does not steer the timing yet); leave out the audio to speak the text")
    if audio is None:
        if text is None:
            raise TalkingHeadError("no speech given: pass audio (a file or an array) or text to speak")
        from .tts import synthesize

        audio = synthesize(text)
    checked = None
    if not isinstance(audio, np.ndarray):
        samples = Path(audio)  # decoded in a stream by Pipeline.write
        checked = check_audio_file(samples)
    else:
        samples = np.asarray(audio, np.float32)
    motion_source = None
    if motion_in is not None:
        motion_source = RecordedMotion(*motion_files.read_motion(motion_in, default_fps=config.fps))
    if isinstance(driving, (str, Path)):
        driving = load_driving(driving, config)
    pipeline = Pipeline.from_image(image, config, motion_source, driving=driving, direction=direction)
    runs: list[Motion] = []
    result = pipeline.write(samples, out, progress, runs.append if motion_out is not None else None,
                            checked_samples=checked)
    if motion_out is not None:
        motion_files.write_motion(motion_out, Motion.concat(runs), config.fps)
    return result


def _check_outputs(out, motion_out, inputs: tuple) -> None:
    """Before any work: the outputs are writable files, not folders, not inputs (TalkingHeadError)."""
    from .motion_files import motion_file_kind
    from .outputs import check_output_paths

    if motion_out is not None:
        motion_file_kind(Path(motion_out), "--motion-out")
    check_output_paths({"--out": out, "--motion-out": motion_out}, inputs)


def _driving_speech(video: Path) -> np.ndarray:
    """The sound track of a driving video, checked like any speech."""
    from .io import probe_video

    if probe_video(video).audio_codec is None:
        raise TalkingHeadError(f"driving video '{video}' has no audio track: give the speech with --audio FILE "
                               "(or --text)")
    samples = load_audio(video, SAMPLE_RATE)
    check_audio(samples, f"the sound of driving video '{video}'")
    return samples
