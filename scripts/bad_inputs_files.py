"""Inputs of the bad-input corpus (scripts/check_bad_inputs.py), all made here from the bundled demo
assets, and the table of CLI cases over them."""

from __future__ import annotations

import hashlib
import json
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from talkinghead.assets import ASSETS_DIR
from talkinghead.io import VideoWriter, load_audio, load_image
from talkinghead import motion_files

SR = 16_000
CLIP_S = 1.0  # speech in accepted cases: short, so a valid run takes a few seconds
LONG_S = 40.0  # speech of the signal cases: still running when signalled
SIZE = "288"  # the demo portrait's face is wide enough from 266 px up
HASHED_BYTES = 5_000_000  # inputs up to this size are compared by content, larger ones by size and time


@dataclass
class Inputs:
    """Paths of the generated inputs; `digests` watches them for modification."""

    root: Path

    def __getattr__(self, name: str) -> Path:
        return self.root / name.replace("__", ".")

    def digests(self) -> dict[str, str]:
        """sha256 of every input file (size and modification time of big ones): a case must change none."""
        out = {}
        for p in sorted(self.root.iterdir()):
            if p.is_file():
                info = p.stat()
                small = info.st_size < HASHED_BYTES
                out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest() if small else f"{info.st_size}:{info.st_mtime_ns}"
        return out


def _wav(path: Path, samples: np.ndarray, rate: int = SR, channels: int = 1, width: int = 2) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _images(root: Path, face: np.ndarray) -> None:
    """Portraits: valid variants and broken ones."""
    Image.fromarray(face).save(root / "face.png")
    Image.fromarray(face).save(root / "face.jpg", quality=90)
    Image.fromarray(face).save(root / "face.webp")
    Image.fromarray(face).convert("L").save(root / "grey.png")
    Image.fromarray(face).convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(face).convert("RGBA").save(root / "rgba.png")
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("this is not an image")
    full = (root / "face.png").read_bytes()
    (root / "truncated.png").write_bytes(full[: len(full) // 3])
    jpg = (root / "face.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpg[: len(jpg) // 4])
    Image.new("RGB", (1, 1)).save(root / "one_px.png")
    Image.new("RGB", (32, 32), (200, 150, 120)).save(root / "tiny.png")
    Image.new("RGB", (600, 20)).save(root / "strip.png")
    gradient = np.tile(np.linspace(0, 255, 512, dtype=np.uint8)[None, :, None], (512, 1, 3))
    Image.fromarray(gradient).save(root / "noface.png")
    small = np.asarray(Image.fromarray(face).resize((face.shape[1] // 3, face.shape[0] // 3)))
    canvas = np.full((512, 512, 3), 200, np.uint8)
    canvas[100:100 + small.shape[0], 150:150 + small.shape[1]] = small
    Image.fromarray(canvas).save(root / "face30.png")
    bomb = Image.new("1", (20_000, 20_000))  # 400 megapixels, a few kB as a 1-bit PNG
    bomb.save(root / "bomb.png")


def _audio(root: Path, speech: np.ndarray) -> None:
    """Speech: valid variants and broken ones."""
    clip = speech[: int(CLIP_S * SR)]
    _wav(root / "speech.wav", clip)
    _wav(root / "long.wav", np.resize(speech, int(LONG_S * SR)))
    _wav(root / "speech8k.wav", clip[::2], rate=8000)
    _wav(root / "stereo.wav", np.repeat(clip, 2), channels=2)
    _wav(root / "silent.wav", np.zeros(2 * SR))
    _wav(root / "short.wav", clip[: SR // 20])
    _wav(root / "nosamples.wav", np.zeros(0))
    _wav(root / "loud.wav", np.clip(clip * 50, -1, 1))
    wav = (root / "speech.wav").read_bytes()
    (root / "truncated.wav").write_bytes(wav[:30])
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("RIFF but not really")
    (root / "image.wav").write_bytes((root / "face.png").read_bytes())
    with VideoWriter(root / "talk.mp4", 25, 64, 64, audio=clip) as writer:
        for _ in range(int(25 * CLIP_S)):
            writer.write(np.zeros((64, 64, 3), np.uint8))
    with VideoWriter(root / "mute.mp4", 25, 64, 64) as writer:
        for _ in range(25):
            writer.write(np.zeros((64, 64, 3), np.uint8))
    (root / "folder").mkdir()
    (root / "afile").write_text("x")


def _directions(root: Path) -> None:
    """Direction files: a good one and hostile ones."""
    (root / "good.yaml").write_text("events:\n  - {at: 0.5, gaze: left}\n")
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    (root / "bomb.yaml").write_text("\n".join(lines) + "\nevents: [*i]\n")
    (root / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (root / "longvalue.json").write_text(json.dumps({"events": [{"at": 1, "emotion": "x" * 1_000_000}]}))
    (root / "notyaml.yaml").write_text("events: [\n  - {at: 1\n")
    (root / "badtime.json").write_text(json.dumps({"events": [{"from": 3, "to": 1, "gaze": "left"}]}))
    (root / "nantime.yaml").write_text("events:\n  - {at: .nan, gaze: left}\n")
    (root / "unknown.json").write_text(json.dumps({"events": [{"at": 1, "dance": "yes"}]}))
    (root / "direction.txt").write_text("events: []")
    (root / "big.json").write_text(json.dumps({"events": [{"at": i, "gaze": "left"} for i in range(60_000)]}))


def _motions(root: Path) -> None:
    """Motion files: a good one and broken ones (including one over the row limit)."""
    header = ",".join(motion_files.CSV_COLUMNS)
    zeros = ",".join(["0"] * (len(motion_files.CSV_COLUMNS) - 5) + ["1", "0", "0"])
    rows = [f"00:00:{i // 25:02d}:{i % 25:02d}.000,61,{zeros}" for i in range(int(25 * CLIP_S))]
    (root / "motion.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    bad = rows[:5] + [rows[5].replace(",0,", ",oops,", 1)]
    (root / "badcell.csv").write_text(header + "\n" + "\n".join(bad) + "\n")
    (root / "nancell.csv").write_text(header + "\n" + "\n".join(rows[:3] + [rows[3].replace(",0,", ",nan,", 1)]) + "\n")
    (root / "backwards.csv").write_text(header + "\n" + "\n".join([rows[3], rows[1]]) + "\n")
    (root / "emptymotion.csv").write_text("")
    (root / "wrongjson.json").write_text(json.dumps({"format": "something-else"}))
    line = f"00:00:00:00.000,61,{zeros}\n"
    with open(root / "huge.csv", "w") as out:  # rows over MAX_MOTION_FRAMES, refused before parsing
        out.write(header + "\n")
        for _ in range((motion_files.MAX_MOTION_FRAMES + 1000) // 1000):
            out.write(line * 1000)


def make_inputs(root: Path) -> Inputs:
    """Write every input file of the corpus under `root`."""
    root.mkdir(parents=True)
    face = load_image(ASSETS_DIR / "astronaut.png")
    speech = load_audio(ASSETS_DIR / "demo_speech.wav")
    _images(root, face)
    _audio(root, speech)
    _directions(root)
    _motions(root)
    return Inputs(root)


def _option_cases(i: Inputs) -> list[tuple[str, str, list[str], str]]:
    """Option values (the config schema's part of issue 17): refused with one line, never garbage."""
    base = ["--image", str(i.face__png), "--audio", str(i.speech__wav), "--size", SIZE]
    bad = [("--seed", "-1"), ("--seed", str(2 ** 70)), ("--crf", "-5"), ("--crf", "99"), ("--fps", "0"),
           ("--fps", "100000"), ("--size", "10"), ("--size", "100000"), ("--head-amplitude", "nan"),
           ("--head-amplitude", "inf"), ("--head-amplitude", "1e9"), ("--head-amplitude", "-1"),
           ("--head-speed", "nan"), ("--mouth-amplitude", "inf"), ("--mouth-amplitude", "-50"),
           ("--blink-rate", "nan"), ("--blink-rate", "-5"), ("--emotion", "bogus"), ("--emotion", "happy:nan"),
           ("--gaze", "nonsense"), ("--distance", "0"), ("--distance", "nan"), ("--expression-scale", "inf"),
           ("--gate", "mouth=foo"), ("--amplitude", "bogus=1"), ("--mouth-model", str(i.root / "none.npz")),
           ("--fps", "abc"), ("--seed", "1" * 5000)]
    return [(f"option {flag} {value[:20]}", "refuse", base + [flag, value], "") for flag, value in bad]


def _file_cases(i: Inputs) -> list[tuple[str, str, list[str], str]]:
    """Portraits, speech and outputs."""
    def run(image, audio, *extra, expect="refuse", name=None):
        return (name or f"{Path(image).name} + {Path(audio).name}", expect,
                ["--image", str(image), "--audio", str(audio), "--size", SIZE, *extra], "")

    cases = [run(i.face__png, i.speech__wav, expect="accept", name="valid run (reference)")]
    cases += [run(getattr(i, n.replace(".", "__")), i.speech__wav, expect="accept")
              for n in ("face.jpg", "face.webp", "grey.png", "cmyk.jpg", "rgba.png")]
    cases += [run(getattr(i, n.replace(".", "__")), i.speech__wav)
              for n in ("empty.png", "text.png", "truncated.png", "truncated.jpg", "one_px.png", "tiny.png",
                        "strip.png", "noface.png", "face30.png", "bomb.png", "missing.png", "folder", "speech.wav")]
    cases += [run(i.face__png, getattr(i, n.replace(".", "__")), expect="accept")
              for n in ("speech8k.wav", "stereo.wav", "loud.wav", "talk.mp4")]
    cases += [run(i.face__png, getattr(i, n.replace(".", "__")))
              for n in ("silent.wav", "short.wav", "nosamples.wav", "truncated.wav", "empty.wav", "text.wav",
                        "image.wav", "mute.mp4", "missing.wav", "folder")]
    cases += [run(i.face__png, i.talk__mp4, "--out", str(i.talk__mp4), name="--out is the --audio recording"),
              run(i.face__png, i.speech__wav, "--out", str(i.folder), name="--out is a folder"),
              run(i.face__png, i.speech__wav, "--out", str(i.afile / "v.mp4"), name="--out below a file"),
              run(i.face__png, i.speech__wav, "--out", "/proc/v.mp4", name="--out on a read-only file system"),
              run(i.face__png, i.speech__wav, "--out", str(i.root / "o.avi"), name="--out not .mp4"),
              run(i.face__png, i.speech__wav, "--motion-out", str(i.folder), name="--motion-out is a folder"),
              run(i.face__png, i.speech__wav, "--motion-out", str(i.root / "m.txt"), name="--motion-out .txt"),
              run(i.face__png, i.speech__wav, "--motion-out", str(i.motion__csv), "--motion-in", str(i.motion__csv),
                  name="--motion-out is the --motion-in file")]
    return cases


def _signal_cases(i: Inputs) -> list[tuple[str, str, list[str], str]]:
    base = ["--image", str(i.face__png), "--audio", str(i.long__wav), "--size", SIZE]
    return [(f"{sig} mid-run", "refuse", base, sig) for sig in ("SIGTERM", "SIGHUP", "SIGINT")]


def _direction_motion_cases(i: Inputs) -> list[tuple[str, str, list[str], str]]:
    base = ["--image", str(i.face__png), "--audio", str(i.speech__wav), "--size", SIZE]
    cases = [("direction good.yaml", "accept", base + ["--direction", str(i.good__yaml)], "")]
    cases += [(f"direction {n}", "refuse", base + ["--direction", str(i.root / n)], "")
              for n in ("bomb.yaml", "deep.json", "longvalue.json", "notyaml.yaml", "badtime.json", "nantime.yaml",
                        "unknown.json", "direction.txt", "missing.yaml")]
    cases += [("motion-in motion.csv", "accept", base + ["--motion-in", str(i.motion__csv)], "")]
    cases += [(f"motion-in {n}", "refuse", base + ["--motion-in", str(i.root / n)], "")
              for n in ("badcell.csv", "nancell.csv", "backwards.csv", "emptymotion.csv", "wrongjson.json",
                        "huge.csv", "missing.csv")]
    return cases


def cli_case_table(i: Inputs) -> list[tuple[str, str, list[str], str]]:
    """Every CLI case: (name, "refuse" | "accept", arguments after `generate`, signal to send or "")."""
    return _file_cases(i) + _direction_motion_cases(i) + _signal_cases(i) + _option_cases(i)
