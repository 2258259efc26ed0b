"""File I/O edge layer: images, audio and MP4 video <-> numpy arrays (video in video.py, re-exported).

Conventions used everywhere in this module:

* images and video frames are ``(H, W, 3)`` ``uint8`` RGB arrays;
* audio is a 1-D ``float32`` mono array with samples in ``[-1, 1]``.

Problems with the user's files raise :class:`~talkinghead.errors.TalkingHeadError` with a one-line
message naming the problem and the fix; programming errors (wrong shapes, odd sizes) raise
``ValueError``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import SAMPLE_RATE
from .errors import TalkingHeadError
from .media import PathLike, av_error_detail, check_input_file, open_media
# MP4 video lives in video.py; re-exported here so that io stays the one file edge to import from.
from .background_writer import BackgroundVideoWriter  # noqa: F401
from .video import (DEFAULT_CRF, VideoInfo, VideoWriter, probe_video, read_video_frames)  # noqa: F401

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



# =================================================================================================
# Images
# =================================================================================================


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
    p = check_input_file(path, "image", _IMAGE_FORMATS_HINT)
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


AUDIO_CHUNK_SECONDS = 1.0
"""Default chunk length of :func:`iter_audio` (the pipeline consumes audio in 1 s chunks)."""


def _check_sample_rate(sample_rate: int) -> int:
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return int(sample_rate)


def _decoded_blocks(p: Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Resampled float32 mono blocks of a file's first audio track, as FFmpeg decodes them."""
    container = open_media(p, "audio", "audio/video", _AUDIO_FORMATS_HINT)
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
                f"({av_error_detail(exc)}); re-export it as a WAV or MP3"
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
    p = check_input_file(path, "audio", _AUDIO_FORMATS_HINT)
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
