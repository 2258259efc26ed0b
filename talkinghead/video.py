"""MP4 video <-> numpy arrays: VideoWriter (H.264 + AAC, written atomically), probe_video, read_video_frames.

Frames are ``(H, W, 3)`` ``uint8`` RGB arrays; audio is 1-D ``float32`` mono in ``[-1, 1]``. Re-exported
by io.py, the package's file edge.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Iterator

import av
import numpy as np

from .config import SAMPLE_RATE, default_of
from .errors import TalkingHeadError
from .media import PathLike, av_error_detail, check_input_file, open_media
from .outputs import partial_path

DEFAULT_SAMPLE_RATE = SAMPLE_RATE
# --- video --------------------------------------------------------------------------------------
VIDEO_CODEC = "libx264"
VIDEO_PIX_FMT = "yuv420p"
DEFAULT_CRF = default_of("crf")  # GenerateConfig's
# One x264 thread: beside other work it encoded faster than x264's own thread pool (2.2 against 4.1 ms
# a frame at 288 px on a loaded 2-core machine), and the process's parallelism is its callers' to choose.
ENCODER_THREADS = 1
DEFAULT_PRESET = "veryfast"
AUDIO_CODEC = "aac"
AUDIO_BITRATE = 128_000
"""Target AAC bit rate (b/s); FFmpeg's encoder caps it lower for low sample rates."""
AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
"""Sample rates AAC-LC can carry directly; other rates are resampled to ``AAC_FALLBACK_RATE``."""
AAC_FALLBACK_RATE = 48_000
AUDIO_LEAD_SECONDS = 0.5
"""How far audio is encoded ahead of the video written so far (keeps the MP4 well interleaved)."""


# =================================================================================================
# Video writing
# =================================================================================================


def _make_folder(folder: Path) -> None:
    """Create an output folder (and its parents) if missing; TalkingHeadError if it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TalkingHeadError(
            f"cannot create output folder '{folder}' ({exc.strerror or exc}); choose a writable output path"
        ) from None


class VideoWriter:
    """Context manager that encodes RGB frames (+ optional mono audio) to an H.264/AAC MP4, atomically.

    ``VideoWriter(path, fps, width, height, audio=None, sample_rate=16000, crf=18, preset='veryfast',
    has_audio=None)``

    * ``write(frame)`` appends one (height, width, 3) uint8 RGB frame.
    * ``write_audio(samples)`` appends 1-D float32 mono samples at ``sample_rate`` (any chunk size,
      any time before closing). ``audio=`` is the same as one ``write_audio`` call up front.
    * ``has_audio`` decides whether the file gets an AAC track; ``None`` means "if ``audio`` is given".
      Pass ``has_audio=True`` to stream audio through ``write_audio`` only.

    Output goes to ``.{name}.partial.mp4`` next to ``path`` and is renamed to ``path`` only when the
    ``with`` block (or :meth:`close`) finishes without error; otherwise the partial file is deleted.
    Audio is kept in the file in full even if it is longer than the video.
    """

    def __init__(
        self,
        path: PathLike,
        fps: float,
        width: int,
        height: int,
        audio: np.ndarray | None = None,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        has_audio: bool | None = None,
    ) -> None:
        """Open the partial output file and set up the H.264 (and AAC) streams."""
        width, height = int(width), int(height)
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"video width and height must be positive and even, got {width}x{height}")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")

        self.path = Path(path)
        if self.path.is_dir():
            raise TalkingHeadError(f"output path '{self.path}' is a folder; give a file name such as out.mp4")
        self.width, self.height = width, height
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.sample_rate = int(sample_rate)
        self.has_audio = (audio is not None) if has_audio is None else bool(has_audio)
        if audio is not None and not self.has_audio:
            raise ValueError("audio was given but has_audio=False")
        self.frames_written = 0
        self.samples_written = 0  # audio samples handed to the encoder (at self.sample_rate)
        self._pending: list[np.ndarray] = []  # audio not yet encoded
        self._pending_len = 0
        self._closed = False

        _make_folder(self.path.parent)
        self.partial_path = partial_path(self.path)

        try:
            self._container = av.open(
                str(self.partial_path), mode="w", format="mp4", options={"movflags": "+faststart"}
            )
        except (av.FFmpegError, OSError) as exc:
            raise TalkingHeadError(
                f"cannot write video '{self.path}' ({av_error_detail(exc)}); choose a writable output path"
            ) from None

        try:
            self._add_streams(crf, preset)
        except BaseException:
            self._discard()
            raise

        if audio is not None:
            self.write_audio(audio)

    def _add_streams(self, crf: int, preset: str) -> None:
        """The H.264 stream (BT.709, limited range) and, if wanted, the AAC one."""
        vstream = self._container.add_stream(VIDEO_CODEC, rate=self.fps)
        vstream.width, vstream.height = self.width, self.height
        vstream.pix_fmt = VIDEO_PIX_FMT
        vstream.options = {"crf": str(int(crf)), "preset": str(preset), "threads": str(ENCODER_THREADS)}
        # Frames are converted with the BT.709 matrix, limited range; say so in the stream.
        cc = vstream.codec_context
        cc.colorspace = 1  # AVCOL_SPC_BT709
        cc.color_primaries = 1  # AVCOL_PRI_BT709
        cc.color_trc = 1  # AVCOL_TRC_BT709
        cc.color_range = 1  # AVCOL_RANGE_MPEG
        self._vstream = vstream

        self._astream = None
        if self.has_audio:
            aac_rate = self.sample_rate if self.sample_rate in AAC_SAMPLE_RATES else AAC_FALLBACK_RATE
            astream = self._container.add_stream(AUDIO_CODEC, rate=aac_rate)
            astream.layout = "mono"
            astream.format = "fltp"
            astream.bit_rate = AUDIO_BITRATE
            self._astream = astream

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- writing ---------------------------------------------------------------------------------
    def check_frame(self, frame: np.ndarray) -> None:
        """ValueError unless `frame` is a (height, width, 3) uint8 array."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {frame.shape} {frame.dtype}"
            )

    def checked_audio(self, samples: np.ndarray) -> np.ndarray:
        """`samples` as an array; ValueError unless this writer has an audio track and they are 1-D."""
        if not self.has_audio:
            raise ValueError("this VideoWriter has no audio track (pass audio= or has_audio=True)")
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"expected 1-D mono audio samples, got shape {samples.shape}")
        return samples

    def write(self, frame: np.ndarray) -> None:
        """Encode one (height, width, 3) uint8 RGB frame."""
        if self._closed:
            raise ValueError("VideoWriter is closed")
        self.check_frame(frame)
        vframe = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vframe = vframe.reformat(format=VIDEO_PIX_FMT, dst_colorspace="ITU709", dst_color_range="MPEG")
        vframe.pts = self.frames_written
        vframe.time_base = 1 / self.fps
        self._mux(self._vstream.encode, vframe)
        self.frames_written += 1
        if self._pending_len:
            self._encode_audio_until(float(self.frames_written / self.fps) + AUDIO_LEAD_SECONDS)

    def write_audio(self, samples: np.ndarray) -> None:
        """Append a chunk of 1-D float32 mono samples at ``sample_rate`` to the audio track."""
        if self._closed:
            raise ValueError("VideoWriter is closed")
        samples = self.checked_audio(samples)
        if samples.size == 0:
            return
        chunk = np.clip(samples.astype(np.float32, copy=False), -1.0, 1.0)
        self._pending.append(chunk)
        self._pending_len += chunk.size
        # Keep audio roughly level with the video written so far; the rest waits for more frames.
        self._encode_audio_until(float(self.frames_written / self.fps) + AUDIO_LEAD_SECONDS)

    def _encode_audio_until(self, seconds: float | None) -> None:
        """Encode pending audio up to ``seconds`` of track time (all of it when ``None``)."""
        if not self._pending_len:
            return
        if seconds is None:
            limit = self._pending_len
        else:
            limit = min(self._pending_len, int(seconds * self.sample_rate) - self.samples_written)
        if limit <= 0:
            return
        buf = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        take, rest = buf[:limit], buf[limit:]
        self._pending = [rest] if rest.size else []
        self._pending_len = rest.size

        aframe = av.AudioFrame.from_ndarray(np.ascontiguousarray(take[None, :]), format="flt", layout="mono")
        aframe.sample_rate = self.sample_rate
        aframe.pts = self.samples_written
        aframe.time_base = Fraction(1, self.sample_rate)
        self._mux(self._astream.encode, aframe)
        self.samples_written += take.size

    def _mux(self, encode, frame) -> None:
        """Encode `frame` (None flushes) and write the packets; a failing disk becomes a TalkingHeadError."""
        try:
            packets = encode(frame)
            if packets:
                self._container.mux(packets)
        except (av.FFmpegError, OSError) as exc:
            self._discard()
            if isinstance(exc, OSError):
                fix = "free some disk space" if exc.errno == errno.ENOSPC else "choose a writable output folder"
            else:
                fix = "check the encoder options (crf, fps, size)"
            raise TalkingHeadError(f"cannot write video '{self.path}' ({av_error_detail(exc)}); {fix}") from None

    # -- finishing -------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush the encoders, finish the MP4 and move it to its final path."""
        if self._closed:
            return
        try:
            if self.frames_written == 0:
                raise ValueError(f"no video frames were written to '{self.path}'")
            self._encode_audio_until(None)
            self._mux(self._vstream.encode, None)
            if self._astream is not None and self.samples_written:
                self._mux(self._astream.encode, None)
            self._mux(lambda _: self._container.close(), None)
            self._closed = True
            os.replace(self.partial_path, self.path)
        except BaseException:
            self._discard()
            raise

    def abort(self) -> None:
        """Stop writing and delete the partial file; the final path is left untouched."""
        self._discard()

    def _discard(self) -> None:
        """Close the container (ignoring errors) and delete the partial file."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - already failing; cleanup must not mask the cause
                pass
        try:
            self.partial_path.unlink(missing_ok=True)
        except OSError:
            pass


# =================================================================================================
# Video reading (evaluation and tests)
# =================================================================================================


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found in a video file."""

    fps: float
    frame_count: int  # exact for MP4 (from the index), otherwise estimated from duration * fps
    width: int
    height: int
    duration: float  # seconds, container duration (longest stream)
    video_codec: str
    pix_fmt: str | None
    audio_codec: str | None  # None when there is no audio track
    audio_sample_rate: int | None
    audio_duration: float | None  # seconds, None when unknown or no audio


def _open_video(path: PathLike) -> tuple[Path, "av.container.InputContainer"]:
    """Open ``path`` for reading, with friendly errors, and check it has a video stream."""
    p = check_input_file(path, "video", "use an MP4, MOV or MKV file")
    container = open_media(p, "video", "video", "use an MP4, MOV or MKV file")
    if not container.streams.video:
        container.close()
        raise TalkingHeadError(f"'{p}' has no video track; give a video file (MP4, MOV or MKV)")
    return p, container


def probe_video(path: PathLike) -> VideoInfo:
    """Return fps, frame count, size, duration and codecs of a video file without decoding it."""
    _, container = _open_video(path)
    try:
        v = container.streams.video[0]
        rate = v.average_rate or v.guessed_rate or v.base_rate
        fps = float(rate) if rate else 0.0
        if container.duration is not None:
            duration = container.duration / av.time_base
        elif v.duration is not None and v.time_base is not None:
            duration = float(v.duration * v.time_base)
        else:
            duration = 0.0
        frames = int(v.frames or 0)
        if frames <= 0 and fps > 0:
            v_duration = float(v.duration * v.time_base) if v.duration and v.time_base else duration
            frames = int(round(v_duration * fps))
        audio_codec = audio_rate = audio_duration = None
        if container.streams.audio:
            a = container.streams.audio[0]
            audio_codec = a.codec_context.name
            audio_rate = a.codec_context.sample_rate
            if a.duration is not None and a.time_base is not None:
                audio_duration = float(a.duration * a.time_base)
        return VideoInfo(
            fps=fps,
            frame_count=frames,
            width=v.codec_context.width,
            height=v.codec_context.height,
            duration=float(duration),
            video_codec=v.codec_context.name,
            pix_fmt=v.codec_context.pix_fmt,
            audio_codec=audio_codec,
            audio_sample_rate=audio_rate,
            audio_duration=audio_duration,
        )
    finally:
        container.close()


def read_video_frames(path: PathLike) -> Iterator[np.ndarray]:
    """Yield every frame of a video's first video track as an (H, W, 3) uint8 RGB array."""
    p, container = _open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise TalkingHeadError(
                f"cannot decode video '{p}': the file is damaged ({av_error_detail(exc)}); re-export it"
            ) from None
    finally:
        container.close()
