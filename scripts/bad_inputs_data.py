"""Cases of the bad-input corpus (scripts/check_bad_inputs.py) for the data and training commands:
`talkinghead data prepare` and `talkinghead train motion`, each refused with one error line and nothing
written. Their inputs are made here: an empty folder, a damaged video, tables without the columns asked
for, and a prepared folder whose one clip is too short to train on and has no speech states."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _damaged_video(path: Path) -> None:
    """The first bytes of a PNG named .mp4: a container no decoder opens."""
    from talkinghead.assets import ASSETS_DIR

    path.write_bytes((ASSETS_DIR / "astronaut.png").read_bytes()[:5000])


def _prepared(folder: Path, frames: int) -> None:
    """A `talkinghead data prepare` folder with one kept speech clip of `frames` frames and no speech states
    (a shard written before states were stored)."""
    (folder / "shards").mkdir(parents=True)
    times = np.arange(frames) / 25.0
    head = np.zeros((frames, 6), np.float32)
    head[:, 5] = 1.0
    t = np.arange(int(frames / 25.0 * 16000)) / 16000
    np.savez(folder / "shards" / "c.npz", times=times, found=np.ones(frames, bool), head=head,
             gaze=np.zeros((frames, 2), np.float32), expression=np.zeros((frames, 52), np.float32),
             blendshapes=np.full((frames, 52), 0.1, np.float32),
             audio=(3000 * np.sin(2 * np.pi * 180 * t)).astype(np.int16))
    (folder / "manifest.tsv").write_text("id\tsplit\tkept\tspeech_kept\tav_offset_s\tshard\n"
                                         "c\ttrain\tTrue\tTrue\t0\tshards/c.npz\n", encoding="utf-8")


def data_cases(root: Path) -> list[tuple[str, list[str], str]]:
    """(name, argv, output path the case must not create) of every data and training case; inputs under root."""
    root.mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "damaged").mkdir()
    _damaged_video(root / "damaged" / "clip.mp4")
    (root / "notes.txt").write_text("just a note\n", encoding="utf-8")
    (root / "files_only.tsv").write_text("file\nclip.mp4\n", encoding="utf-8")
    (root / "existing.npz").write_bytes(b"a file already there")
    _prepared(root / "short", 20)  # shorter than a training window
    _prepared(root / "no_states", 200)  # long enough, but no speech states for cpu_speech
    out = "{out}"  # replaced per case by a path inside the case's output folder
    prepare = ["data", "prepare"]
    train = ["train", "motion", "--quiet"]
    return [
        ("prepare: input folder missing", [*prepare, str(root / "missing"), "--out", out], out),
        ("prepare: folder without videos", [*prepare, str(root / "empty"), "--out", out], out),
        ("prepare: the only video is damaged", [*prepare, str(root / "damaged"), "--out", out], out),
        ("prepare: --out is a file", [*prepare, str(root / "damaged"), "--out", str(root / "notes.txt")], out),
        ("prepare: --speakers missing", [*prepare, str(root / "damaged"), "--out", out, "--speakers",
                                         str(root / "missing.tsv")], out),
        ("prepare: --speakers without columns", [*prepare, str(root / "damaged"), "--out", out, "--speakers",
                                                 str(root / "notes.txt")], out),
        ("prepare: --speakers without a speaker column", [*prepare, str(root / "damaged"), "--out", out,
                                                          "--speakers", str(root / "files_only.tsv")], out),
        ("prepare: --workers 0", [*prepare, str(root / "damaged"), "--out", out, "--workers", "0"], out),
        ("train: data folder missing", [*train, "--data", str(root / "missing"), "--out", out], out),
        ("train: data not prepared", [*train, "--data", str(root / "empty"), "--out", out], out),
        ("train: --out exists", [*train, "--data", str(root / "short"), "--out", str(root / "existing.npz")], out),
        ("train: --steps 0", [*train, "--data", str(root / "short"), "--out", out, "--steps", "0"], out),
        ("train: clips shorter than a window", [*train, "--data", str(root / "short"), "--config", "cpu",
                                                "--steps", "1", "--out", out], out),
        ("train: cpu_speech on data without speech states", [*train, "--data", str(root / "no_states"),
                                                              "--config", "cpu_speech", "--steps", "1", "--out", out],
         out),
        ("train: unknown config", [*train, "--data", str(root / "short"), "--config", "huge", "--out", out], out),
    ]
