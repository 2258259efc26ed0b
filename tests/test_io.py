"""Tests for talkinghead.io: image/audio loading, resizing and the atomic MP4 writer."""

from __future__ import annotations

import struct
import wave
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from talkinghead.errors import TalkingHeadError
from talkinghead.io import (
    BackgroundVideoWriter,
    VideoWriter,
    load_audio,
    load_image,
    probe_video,
    read_video_frames,
    resize_long_side,
)

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SR = 16000


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _sine(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_freq(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write float samples of shape (n,) or (n, channels) as 16-bit PCM."""
    samples = samples if samples.ndim == 2 else samples[:, None]
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def _encode_audio(path: Path, codec: str, rate: int, samples: np.ndarray, fmt: str | None = None) -> None:
    """Encode stereo (copies of) mono float samples with PyAV; skip the test if the encoder is missing."""
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV/FFmpeg build has no '{codec}' encoder")
    try:
        with av.open(str(path), "w", format=fmt) as out:
            stream = out.add_stream(codec, rate=rate)
            stream.layout = "stereo"
            if codec == "vorbis":
                stream.codec_context.options = {"strict": "experimental"}
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(np.stack([samples, samples])), format="fltp", layout="stereo"
            )
            frame.sample_rate = rate
            frame.pts = 0
            out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    except av.FFmpegError as exc:  # pragma: no cover - depends on the FFmpeg build
        pytest.skip(f"cannot encode '{codec}' with this PyAV build: {exc}")


def _write_png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (the pixel data is a dummy)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def _write_video(path: Path, n_frames: int = 30, fps: float = 25, size=(64, 48), audio=None, **kw) -> None:
    width, height = size
    with VideoWriter(path, fps, width, height, audio=audio, **kw) as vw:
        for i in range(n_frames):
            frame = np.zeros((height, width, 3), np.uint8)
            frame[:, :, 0] = (i * 8) % 256
            frame[:, : width // 2, 1] = 200
            vw.write(frame)


# ------------------------------------------------------------------------------------------------
# load_image
# ------------------------------------------------------------------------------------------------


def test_load_image_rgb_png_exact(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (70, 90, 3)
    np.testing.assert_array_equal(out, arr)


def test_load_image_grey(tmp_path):
    grey = np.tile(np.arange(100, dtype=np.uint8), (80, 1))
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    out = load_image(str(tmp_path / "g.png"))
    assert out.shape == (80, 100, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 0], grey)
    np.testing.assert_array_equal(out[:, :, 1], grey)
    np.testing.assert_array_equal(out[:, :, 2], grey)


def test_load_image_rgba_composited_over_white(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[:, :32] = (255, 0, 0, 255)  # opaque red
    rgba[:, 32:] = (255, 0, 0, 0)  # fully transparent (colour must not leak)
    rgba[:8, 32:] = (0, 0, 255, 128)  # half-transparent blue
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "t.png")
    out = load_image(tmp_path / "t.png")
    assert out.shape == (64, 64, 3)
    np.testing.assert_array_equal(out[20, 5], (255, 0, 0))
    np.testing.assert_array_equal(out[20, 50], (255, 255, 255))
    assert np.allclose(out[2, 50], (127, 127, 255), atol=1)


def test_load_image_la_mode(tmp_path):
    la = Image.new("LA", (64, 64), (0, 0))  # transparent black -> white
    la.paste((10, 255), (0, 0, 32, 64))  # opaque dark grey on the left
    la.save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png")
    np.testing.assert_array_equal(out[10, 5], (10, 10, 10))
    np.testing.assert_array_equal(out[10, 60], (255, 255, 255))


def test_load_image_16bit_grey_scaled_not_clipped(tmp_path):
    a = np.zeros((80, 80), np.uint16)
    a[:, :20] = 65535
    a[:, 20:40] = 32768
    a[:, 40:60] = 257 * 10
    Image.fromarray(a).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    out = load_image(tmp_path / "g16.png")
    assert out.dtype == np.uint8 and out.shape == (80, 80, 3)
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))  # white stays white
    assert abs(int(out[0, 30, 0]) - 128) <= 1  # mid-grey stays mid-grey (clipping would give 255)
    assert out[0, 50, 0] == 10
    assert out[0, 70, 0] == 0


def test_load_image_48bit_rgb(tmp_path):
    b = np.zeros((64, 64, 3), np.uint16)  # OpenCV writes BGR
    b[..., 2] = 65535  # R
    b[..., 1] = 32768  # G
    b[..., 0] = 0  # B
    assert cv2.imwrite(str(tmp_path / "c48.png"), b)
    out = load_image(tmp_path / "c48.png")
    assert abs(int(out[5, 5, 0]) - 255) <= 0
    assert abs(int(out[5, 5, 1]) - 128) <= 1
    assert out[5, 5, 2] == 0


def test_load_image_exif_orientation_6(tmp_path):
    # Stored 120 wide x 80 high, red block in the stored top-left corner.
    arr = np.full((80, 120, 3), 40, np.uint8)
    arr[:20, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(arr).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (120, 80, 3)  # width and height swapped
    # After a clockwise turn the stored top-left corner is the displayed top-right corner.
    assert np.allclose(out[5, -5], (255, 0, 0), atol=30)
    assert np.allclose(out[5, 5], (40, 40, 40), atol=30)
    assert np.allclose(out[-5, -5], (40, 40, 40), atol=30)


def test_load_image_palette_with_transparency(tmp_path):
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :32] = (0, 128, 0)
    rgb[:, 32:] = (0, 0, 200)
    im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    im.save(tmp_path / "p.png")
    out = load_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out[10, 10], (0, 128, 0))
    np.testing.assert_array_equal(out[10, 50], (0, 0, 200))

    # Same palette image with the blue entry marked transparent -> white.
    blue_index = im.getpixel((50, 10))
    im.save(tmp_path / "pt.png", transparency=blue_index)
    out = load_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(out[10, 10], (0, 128, 0))
    np.testing.assert_array_equal(out[10, 50], (255, 255, 255))


def test_load_image_cmyk_jpeg(tmp_path):
    Image.new("RGB", (64, 64), (200, 30, 30)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    out = load_image(tmp_path / "cmyk.jpg")
    assert out.shape == (64, 64, 3)
    assert np.allclose(out[32, 32], (200, 30, 30), atol=12)


def test_load_image_webp(tmp_path):
    Image.new("RGB", (80, 64), (10, 220, 90)).save(tmp_path / "a.webp", lossless=True)
    out = load_image(tmp_path / "a.webp")
    assert out.shape == (64, 80, 3)
    np.testing.assert_array_equal(out[3, 3], (10, 220, 90))


def test_load_image_missing_file(tmp_path):
    with pytest.raises(TalkingHeadError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")


def test_load_image_directory(tmp_path):
    with pytest.raises(TalkingHeadError, match="not a file"):
        load_image(tmp_path)


def test_load_image_corrupt(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(TalkingHeadError) as info:
        load_image(bad)
    msg = str(info.value)
    assert "bad.png" in msg and "not a valid image" in msg and "PNG" in msg
    assert "\n" not in msg


def test_load_image_truncated(tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(TalkingHeadError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_load_image_too_small(tmp_path):
    Image.new("RGB", (200, 40)).save(tmp_path / "tiny.png")
    with pytest.raises(TalkingHeadError, match="too small"):
        load_image(tmp_path / "tiny.png")


@pytest.mark.parametrize("size", [(10_000, 9_000), (30_000, 30_000)])
def test_load_image_too_large(tmp_path, size):
    # 90 MP is above our limit but below PIL's own error threshold; 900 MP trips PIL's bomb check.
    _write_png_header_only(tmp_path / "huge.png", *size)
    with _no_warnings():
        with pytest.raises(TalkingHeadError, match="too large"):
            load_image(tmp_path / "huge.png")


class _no_warnings:
    """Context manager asserting that no DecompressionBombWarning escapes."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        assert not [w for w in self._log if issubclass(w.category, Image.DecompressionBombWarning)]
        return False


# ------------------------------------------------------------------------------------------------
# resize_long_side
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,max_side,expected",
    [
        ((1000, 500, 3), 512, (512, 256, 3)),
        ((500, 1001, 3), 512, (256, 512, 3)),  # 255.7 -> 256
        ((301, 203, 3), 512, (300, 202, 3)),  # no upscale, just even crop
        ((300, 200, 3), 512, (300, 200, 3)),
        ((1080, 1920, 3), 640, (360, 640, 3)),
        ((999, 777, 3), 333, (332, 258, 3)),  # 333 x 259 -> cropped even
    ],
)
def test_resize_long_side(shape, max_side, expected):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = resize_long_side(img, max_side)
    assert out.shape == expected
    assert out.dtype == np.uint8
    assert out.shape[0] % 2 == 0 and out.shape[1] % 2 == 0
    assert max(out.shape[:2]) <= max_side
    # aspect ratio kept within the rounding/cropping of a pixel or two
    assert abs(out.shape[1] / out.shape[0] - shape[1] / shape[0]) < 0.02 * shape[1] / shape[0]


def test_resize_long_side_content_and_no_upscale():
    img = np.zeros((400, 200, 3), np.uint8)
    img[:200] = 255  # top half white
    out = resize_long_side(img, 100)
    assert out.shape == (100, 50, 3)
    assert out[10, 10, 0] == 255 and out[90, 10, 0] == 0
    small = np.zeros((64, 64, 3), np.uint8)
    assert resize_long_side(small, 512).shape == (64, 64, 3)


# ------------------------------------------------------------------------------------------------
# load_audio
# ------------------------------------------------------------------------------------------------


def test_load_audio_wav_44k_stereo(tmp_path):
    rate = 44100
    tone = _sine(440, 1.5, rate)
    _write_wav(tmp_path / "s.wav", np.stack([tone, tone], axis=1), rate)
    out = load_audio(tmp_path / "s.wav")
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 1.5 * SR) <= 16
    assert np.abs(out).max() <= 1.0
    assert abs(_dominant_freq(out[1000:-1000], SR) - 440) < 3
    assert abs(np.sqrt(np.mean(out[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.02


def test_load_audio_other_rate_and_mono_downmix(tmp_path):
    rate = 22050
    left = _sine(300, 1.0, rate, 0.4)
    right = np.zeros_like(left)
    _write_wav(tmp_path / "lr.wav", np.stack([left, right], axis=1), rate)
    out = load_audio(tmp_path / "lr.wav", sample_rate=8000)
    assert abs(len(out) - 8000) <= 8
    assert abs(_dominant_freq(out[500:-500], 8000) - 300) < 4
    assert 0.05 < np.abs(out).max() < 0.45  # a mix of both channels, not one of them


@pytest.mark.parametrize(
    "name,codec,rate,fmt",
    [
        ("a.mp3", "libmp3lame", 44100, None),
        ("a.flac", "flac", 48000, None),
        ("a.ogg", "libopus", 48000, "ogg"),
        ("v.ogg", "vorbis", 44100, "ogg"),
        ("a.m4a", "aac", 24000, "ipod"),
    ],
)
def test_load_audio_compressed_roundtrip(tmp_path, name, codec, rate, fmt):
    _encode_audio(tmp_path / name, codec, rate, _sine(440, 1.0, rate), fmt)
    out = load_audio(tmp_path / name)
    assert abs(len(out) / SR - 1.0) < 0.08, len(out) / SR
    assert abs(_dominant_freq(out[2000:-2000], SR) - 440) < 4


def test_load_audio_missing_and_corrupt(tmp_path):
    with pytest.raises(TalkingHeadError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(TalkingHeadError) as info:
        load_audio(tmp_path / "junk.wav")
    assert "junk.wav" in str(info.value) and "\n" not in str(info.value)


def test_load_audio_empty_and_too_short(tmp_path):
    _write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(TalkingHeadError, match="too short"):
        load_audio(tmp_path / "empty.wav")
    _write_wav(tmp_path / "short.wav", _sine(440, 0.05, 16000), 16000)
    with pytest.raises(TalkingHeadError, match="too short"):
        load_audio(tmp_path / "short.wav")


def test_load_audio_video_without_audio_track(tmp_path):
    _write_video(tmp_path / "silent.mp4", n_frames=10)
    with pytest.raises(TalkingHeadError, match="no audio track"):
        load_audio(tmp_path / "silent.mp4")


# ------------------------------------------------------------------------------------------------
# VideoWriter / probe_video / read_video_frames
# ------------------------------------------------------------------------------------------------


def test_video_writer_roundtrip(tmp_path):
    out_path = tmp_path / "nested" / "dir" / "out.mp4"
    audio = _sine(440, 1.2, SR)
    _write_video(out_path, n_frames=30, fps=25, size=(64, 48), audio=audio, sample_rate=SR)
    assert sorted(p.name for p in out_path.parent.iterdir()) == ["out.mp4"]  # no partial left

    info = probe_video(out_path)
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert info.pix_fmt == "yuv420p"
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == 30
    assert info.duration == pytest.approx(1.2, abs=0.1)

    frames = list(read_video_frames(out_path))
    assert len(frames) == 30
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert abs(int(frames[0][10, 10, 1]) - 200) <= 6 and int(frames[0][10, 50, 1]) <= 6
    assert abs(int(frames[20][20, 20, 0]) - 160) <= 6  # frame order / content kept

    back = load_audio(out_path)
    assert abs(len(back) / SR - 1.2) < 0.08
    assert abs(_dominant_freq(back[1000:-1000], SR) - 440) < 4

    with av.open(str(out_path)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264"
        assert v.average_rate == Fraction(25)


def test_video_writer_chunked_audio_equals_upfront(tmp_path):
    audio = _sine(220, 1.0, 24000)
    with VideoWriter(tmp_path / "c.mp4", 25, 32, 32, sample_rate=24000, has_audio=True) as vw:
        for i in range(25):
            if i % 5 == 0:
                start = (i // 5) * 4800
                vw.write_audio(audio[start : start + 4800])
            vw.write(np.full((32, 32, 3), 90, np.uint8))
    back = load_audio(tmp_path / "c.mp4", 24000)
    assert abs(len(back) / 24000 - 1.0) < 0.08
    # no gaps or duplication at the chunk boundaries
    assert np.corrcoef(back[1000:20000], audio[1000:20000])[0, 1] > 0.98


def test_video_writer_exception_leaves_nothing(tmp_path):
    target = tmp_path / "boom.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(target, 25, 32, 32, audio=_sine(440, 1.0, SR)) as vw:
            for _ in range(5):
                vw.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_video_writer_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(target, 25, 32, 32) as vw:
            vw.write(np.zeros((32, 32, 3), np.uint8))
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_video_writer_validation(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", 25, 33, 32)
    with pytest.raises(TalkingHeadError, match="is a folder"):
        VideoWriter(tmp_path, 25, 32, 32)
    with VideoWriter(tmp_path / "v.mp4", 25, 32, 32) as vw:
        with pytest.raises(ValueError):
            vw.write(np.zeros((32, 34, 3), np.uint8))
        with pytest.raises(ValueError):
            vw.write(np.zeros((32, 32, 3), np.float32))
        with pytest.raises(ValueError, match="no audio track"):
            vw.write_audio(np.zeros(100, np.float32))
        vw.write(np.zeros((32, 32, 3), np.uint8))
    assert probe_video(tmp_path / "v.mp4").audio_codec is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def _write_calls(writer, audio: np.ndarray, frames: int = 40) -> None:
    """The pipeline's pattern: an audio chunk ahead of every tenth frame, then textured moving frames."""
    rng = np.random.default_rng(0)
    texture = (rng.random((96, 128, 3)) * 60 + np.linspace(0, 150, 128)[None, :, None]).astype(np.uint8)
    for i in range(frames):
        if i % 10 == 0:
            writer.write_audio(audio[i * SR // 25: (i + 10) * SR // 25])
        writer.write(np.roll(texture, 3 * i, axis=1))


def test_background_writer_writes_the_same_bytes(tmp_path):
    audio = _sine(330, 40 / 25, SR)
    with VideoWriter(tmp_path / "plain.mp4", 25, 128, 96, has_audio=True) as vw:
        _write_calls(vw, audio)
    with BackgroundVideoWriter(tmp_path / "background.mp4", 25, 128, 96, has_audio=True) as bw:
        _write_calls(bw, audio)
    assert (tmp_path / "background.mp4").read_bytes() == (tmp_path / "plain.mp4").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["background.mp4", "plain.mp4"]


def test_background_writer_error_on_its_thread_reaches_the_caller(tmp_path, monkeypatch):
    target = tmp_path / "full.mp4"
    target.write_bytes(b"old")
    bw = BackgroundVideoWriter(target, 25, 32, 32)
    real_write, calls = bw._writer.write, []

    def failing(frame):  # the disk fills on the fourth frame
        calls.append(1)
        if len(calls) == 4:
            bw._writer.abort()
            raise TalkingHeadError("cannot write video 'full.mp4' (No space left on device); free some disk space")
        real_write(frame)

    monkeypatch.setattr(bw._writer, "write", failing)
    with pytest.raises(TalkingHeadError, match="No space left"):
        with bw:
            for _ in range(200):
                bw.write(np.zeros((32, 32, 3), np.uint8))
    assert len(calls) < 200  # frames after the failure are not encoded
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.mp4"]


def test_background_writer_interrupted_leaves_nothing(tmp_path):
    target = tmp_path / "boom.mp4"
    with pytest.raises(KeyboardInterrupt):
        with BackgroundVideoWriter(target, 25, 32, 32, audio=_sine(440, 1.0, SR)) as bw:
            for _ in range(30):
                bw.write(np.zeros((32, 32, 3), np.uint8))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="expected a"):
        with BackgroundVideoWriter(target, 25, 32, 32) as bw:
            bw.write(np.zeros((32, 34, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# real files (shared evaluation data, when present)
# ------------------------------------------------------------------------------------------------

needs_real = pytest.mark.skipif(
    not REAL_DATA.is_dir(), reason=f"shared real-data folder {REAL_DATA} is not present"
)


@needs_real
def test_real_video_audio_track():
    path = REAL_DATA / "retalking_face2.mp4"
    if not path.exists():
        pytest.skip(f"{path} missing")
    audio = load_audio(path)
    assert abs(len(audio) / SR - 5.04) < 0.1
    assert np.sqrt(np.mean(audio**2)) > 0.01  # real speech, not silence


@needs_real
def test_real_image():
    path = REAL_DATA / "hallo_ref3.jpg"
    if not path.exists():
        pytest.skip(f"{path} missing")
    img = load_image(path)
    assert img.shape == (979, 979, 3) and img.dtype == np.uint8
    small = resize_long_side(img, 512)
    assert small.shape == (512, 512, 3)
