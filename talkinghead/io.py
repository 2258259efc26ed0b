"""File I/O edge layer: images, audio and MP4 video <-> numpy arrays.

Conventions used everywhere in this module:

* images and video frames are ``(H, W, 3)`` ``uint8`` RGB arrays;
* audio is a 1-D ``float32`` mono array with samples in ``[-1, 1]``.

Problems with the user's files raise :class:`~talkinghead.errors.TalkingHeadError` with a one-line
message naming the problem and the fix; programming errors (wrong shapes, odd sizes) raise
``ValueError``.
"""

from __future__ import annotations

import errno
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Iterator, Union

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import SAMPLE_RATE, default_of
from .errors import TalkingHeadError
from .outputs import partial_path

PathLike = Union[str, os.PathLike]

# --- images -------------------------------------------------------------------------------------
MIN_IMAGE_SIDE = 64
"""Smallest accepted image side in pixels (a face needs some pixels to work with)."""
MAX_IMAGE_PIXELS = 80_000_000
"""Largest accepted image area; guards against decompression bombs and absurd memory use."""
IMAGE_BACKGROUND = (255, 255, 255)
"""Colour that transparent image areas are composited over."""
_IMAGE_FORMATS_HINT = "use a JPEG, PNG or WebP"

# --- audio --------------------------------------------------------------------------------------
DEFAULT_SAMPLE_RATE = SAMPLE_RATE
"""Default sample rate (Hz) for decoded audio and for :class:`VideoWriter` input."""
MIN_AUDIO_SECONDS = 0.1
"""Shortest accepted audio clip."""
DOWNMIX_OPTIONS = {"rematrix_maxval": "1.0"}
"""libswresample options: downmix by averaging channels (FFmpeg's default sums them at -3 dB, which can clip)."""
_AUDIO_FORMATS_HINT = "use a WAV, MP3, M4A, FLAC or OGG file, or a video with sound"

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
# Images
# =================================================================================================


def _check_input_file(path: PathLike, kind: str, hint: str) -> Path:
    """Return ``path`` as a Path after checking that it names an existing regular file."""
    p = Path(path)
    if not p.exists():
        raise TalkingHeadError(f"{kind} file '{p}' does not exist (check the path; {hint})")
    if not p.is_file():
        raise TalkingHeadError(f"{kind} path '{p}' is not a file (give the path of a file; {hint})")
    return p


def read_text_file(path: PathLike, kind: str, expected: str) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped). `kind` names the file in errors
    ("motion file"), `expected` says what to give instead ("a UTF-8 CSV or JSON file")."""
    p = Path(path)
    if not p.is_file():
        raise TalkingHeadError(f"{kind} '{p}' not found: check the path")
    try:
        return p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TalkingHeadError(f"cannot read {kind} '{p}' ({exc}): give {expected}") from None


def _to_uint8_rgb(im: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to an (H, W, 3) uint8 RGB array."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grey (PNG) arrives as I;16 or I (int32 holding 0..65535): scale, do not clip.
        grey = np.asarray(im).astype(np.float32)
        grey = np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode == "F":
        grey = np.asarray(im, dtype=np.float32)
        finite_max = float(np.nanmax(grey)) if grey.size else 0.0
        scale = 255.0 if finite_max <= 1.0 else 1.0  # 0..1 float images vs 0..255 ones
        grey = np.clip(np.nan_to_num(grey * scale), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))

    # Palette / grey images with a transparency key become RGBA; premultiplied modes un-premultiply.
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB", "1") and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        rgb = rgba[:, :, :3].astype(np.uint16)
        alpha = rgba[:, :, 3:4].astype(np.uint16)
        background = np.asarray(IMAGE_BACKGROUND, dtype=np.uint16)
        out = (rgb * alpha + background * (255 - alpha) + 127) // 255
        return np.ascontiguousarray(out.astype(np.uint8))
    if mode != "RGB":
        im = im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV ...
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def load_image(path: PathLike) -> np.ndarray:
    """Read a photo (JPEG/PNG/WebP/anything Pillow reads) as an EXIF-upright (H, W, 3) uint8 RGB array."""
    p = _check_input_file(path, "image", _IMAGE_FORMATS_HINT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise TalkingHeadError(
                        f"image '{p}' is too large ({width}x{height} = {width * height / 1e6:.0f} "
                        f"megapixels, limit {MAX_IMAGE_PIXELS / 1e6:.0f}); downscale it first"
                    )
                im.load()
                im = ImageOps.exif_transpose(im) or im
                array = _to_uint8_rgb(im)
    except TalkingHeadError:
        raise
    except Image.DecompressionBombError:
        raise TalkingHeadError(
            f"image '{p}' is too large (over {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels); downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise TalkingHeadError(
            f"cannot read image '{p}': not a valid image file ({_IMAGE_FORMATS_HINT})"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError) as exc:
        # Truncated/corrupt data, unsupported mode/compression, broken EXIF ...
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TalkingHeadError(
            f"cannot read image '{p}': the file is damaged or unsupported ({detail}); "
            f"re-save it as a JPEG or PNG"
        ) from None

    height, width = array.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise TalkingHeadError(
            f"image '{p}' is too small ({width}x{height}); use a photo at least "
            f"{MIN_IMAGE_SIDE} px on each side (ideally 512 px or more)"
        )
    return array


def resize_long_side(image: np.ndarray, max_long_side: int) -> np.ndarray:
    """Downscale (H, W, C) image so its long side is <= max_long_side, then crop to even H and W (never upscales; may return the input)."""
    if image.ndim < 2:
        raise ValueError(f"expected an (H, W[, C]) image, got shape {image.shape}")
    if max_long_side < 2:
        raise ValueError(f"max_long_side must be >= 2, got {max_long_side}")
    height, width = image.shape[:2]
    long_side = max(height, width)
    if long_side > max_long_side:
        scale = max_long_side / long_side
        new_w = max(2, min(max_long_side, int(round(width * scale))))
        new_h = max(2, min(max_long_side, int(round(height * scale))))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        height, width = new_h, new_w
    even_h, even_w = height - height % 2, width - width % 2
    if (even_h, even_w) != (height, width):
        image = np.ascontiguousarray(image[:even_h, :even_w])
    return image


# =================================================================================================
# Audio
# =================================================================================================


def _av_error_detail(exc: BaseException) -> str:
    """One-line description of a PyAV/FFmpeg exception."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0]


def _open_media(p: Path, kind: str, what: str, hint: str) -> "av.container.InputContainer":
    """av.open for reading, turning FFmpeg's failures into one-line TalkingHeadErrors."""
    try:
        return av.open(str(p), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise TalkingHeadError(
            f"cannot read {kind} '{p}': not a recognised {what} file ({_av_error_detail(exc)}); {hint}"
        ) from None


AUDIO_CHUNK_SECONDS = 1.0
"""Default chunk length of :func:`iter_audio` (the pipeline consumes audio in 1 s chunks)."""


def _check_sample_rate(sample_rate: int) -> int:
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return int(sample_rate)


def _decoded_blocks(p: Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Resampled float32 mono blocks of a file's first audio track, as FFmpeg decodes them."""
    container = _open_media(p, "audio", "audio/video", _AUDIO_FORMATS_HINT)
    try:
        if not container.streams.audio:
            raise TalkingHeadError(
                f"'{p}' has no audio track; give a file that contains speech ({_AUDIO_FORMATS_HINT})"
            )
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate, options=DOWNMIX_OPTIONS)
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler count samples; broken timestamps do not matter
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except (av.FFmpegError, ValueError) as exc:
            raise TalkingHeadError(
                f"cannot decode audio '{p}': the file is damaged or uses an unsupported codec "
                f"({_av_error_detail(exc)}); re-export it as a WAV or MP3"
            ) from None
    finally:
        container.close()


def _clean(block: np.ndarray) -> np.ndarray:
    """float32, NaN -> 0, clipped to [-1, 1] (in place where possible)."""
    block = block.astype(np.float32, copy=False)
    np.nan_to_num(block, copy=False)
    return np.clip(block, -1.0, 1.0, out=block)


def iter_audio(path: PathLike, chunk_seconds: float = AUDIO_CHUNK_SECONDS,
               sample_rate: int = DEFAULT_SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Decode an audio or video file's first audio track in a stream: float32 mono chunks in [-1, 1] of
    chunk_seconds (the last may be shorter), so memory does not depend on the file's length."""
    sample_rate = _check_sample_rate(sample_rate)
    step = max(1, int(round(chunk_seconds * sample_rate)))
    p = _check_input_file(path, "audio", _AUDIO_FORMATS_HINT)
    pending: list[np.ndarray] = []
    pending_len = 0
    for block in _decoded_blocks(p, sample_rate):
        pending.append(block)
        pending_len += block.size
        if pending_len < step:
            continue
        buffer = np.concatenate(pending)
        whole = buffer.size - buffer.size % step
        for start in range(0, whole, step):
            yield _clean(buffer[start:start + step].copy())
        pending, pending_len = [buffer[whole:]], buffer.size - whole
    if pending_len:
        yield _clean(np.concatenate(pending))


@dataclass(frozen=True)
class AudioSummary:
    """Length and loudness of a decoded audio track (from one streamed pass)."""

    samples: int  # at the requested sample rate
    sample_rate: int
    peak: float  # largest |sample|, 0..1

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.samples / self.sample_rate


def audio_summary(path: PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE) -> AudioSummary:
    """Length and peak of a file's audio in one streamed pass (memory flat in its length); the checks of
    :func:`load_audio` apply (no audio track, damaged, shorter than MIN_AUDIO_SECONDS)."""
    samples, peak = 0, 0.0
    for chunk in iter_audio(path, AUDIO_CHUNK_SECONDS, sample_rate):
        samples += chunk.size
        peak = max(peak, float(np.max(np.abs(chunk))))
    _check_length(Path(path), samples, _check_sample_rate(sample_rate))
    return AudioSummary(samples, int(sample_rate), peak)


def _check_length(p: Path, samples: int, sample_rate: int) -> None:
    if samples < MIN_AUDIO_SECONDS * sample_rate:
        raise TalkingHeadError(
            f"audio '{p}' is empty or too short ({samples / sample_rate:.2f} s); "
            f"give at least {MIN_AUDIO_SECONDS} s of speech"
        )


def load_audio(path: PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio track of an audio or video file to a 1-D float32 mono array in [-1, 1] at
    sample_rate Hz (the whole file in memory: use iter_audio to stream a long one)."""
    chunks = list(iter_audio(path, AUDIO_CHUNK_SECONDS, sample_rate))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    _check_length(Path(path), audio.size, _check_sample_rate(sample_rate))
    return audio


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
                f"cannot write video '{self.path}' ({_av_error_detail(exc)}); choose a writable output path"
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
    def write(self, frame: np.ndarray) -> None:
        """Encode one (height, width, 3) uint8 RGB frame."""
        if self._closed:
            raise ValueError("VideoWriter is closed")
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {frame.shape} {frame.dtype}"
            )
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
        if not self.has_audio:
            raise ValueError("this VideoWriter has no audio track (pass audio= or has_audio=True)")
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"expected 1-D mono audio samples, got shape {samples.shape}")
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
            raise TalkingHeadError(f"cannot write video '{self.path}' ({_av_error_detail(exc)}); {fix}") from None

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
    p = _check_input_file(path, "video", "use an MP4, MOV or MKV file")
    container = _open_media(p, "video", "video", "use an MP4, MOV or MKV file")
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
                f"cannot decode video '{p}': the file is damaged ({_av_error_detail(exc)}); re-export it"
            ) from None
    finally:
        container.close()
