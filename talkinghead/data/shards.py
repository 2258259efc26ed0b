"""The dataset's files: one shard (.npz) per clip, one record (.json) per video, and the manifest.

    DATASET/shards/<clip id>.npz    the clip's arrays (SHARD_ARRAYS)
    DATASET/records/<video key>.json what preparing the video gave: clips and their statistics, or the
                                    reason it was skipped; its presence marks the video done
    DATASET/manifest.json, .tsv     every clip with speaker, split, curation verdicts and shift
Every file is written to a temporary name and renamed, so an interrupted run leaves no half file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import numpy as np

SHARDS, RECORDS = "shards", "records"
SHARD_ARRAYS = {  # name: shape, meaning (T frames of the clip)
    "times": "(T,) float64 s: each frame's centre on the clip's audio (presentation time + half a frame)",
    "landmarks": "(T, 478, 3) float32 px: image-mode face track, NaN where no face",
    "blendshapes": "(T, 52) float32: MediaPipe's ARKit-named scores (0 where no face)",
    "found": "(T,) bool: a face was found",
    "box": "(T, 4) float32 px: face mesh box x0, y0, x1, y1",
    "second_face": "(T,) float32: second-largest face width / the largest's (0 when alone)",
    "sharpness": "(T,) float32: Laplacian variance of the face crop at 128 px",
    "head_angles": "(T, 3) float32 deg: yaw, pitch, roll against the frontal canonical face",
    "head_turn": "(T,) float32 deg: out-of-plane rotation away from frontal",
    "fit_residual": "(T,) float32 IOD: RMS of the rigid points after the similarity fit (track quality)",
    "aperture": "(T,) float32 IOD: inner-lip gap",
    "width": "(T,) float32 IOD: mouth width",
    "expression": "(T, 52) float32: Motion.expression change from the clip's first frame",
    "head": "(T, 6) float32: Motion.head relative to the first frame (yaw, pitch, roll deg, tx, ty IOD, scale)",
    "gaze": "(T, 2) float32 eye widths: Motion.gaze relative to the first frame",
    "audio": "(n,) int16: the clip's audio at 16 kHz (empty without sound)",
    "speech_states": "(N, 384) float32: Whisper tiny.en encoder states at 50 Hz (state j at j / 50 s)",
    "voiced": "(T,) bool: WebRTC VAD hears speech in the frame",
}
VALIDATION_SHARE = 0.2  # about this share of speakers goes to validation (by a hash of the speaker id)
MANIFEST_COLUMNS = ("id", "video", "speaker", "split", "kind", "start_s", "seconds", "frames", "fps",
                    "kept", "speech_kept", "removed_by", "av_offset_s", "av_r", "shard")


def _atomic(path: Path, write) -> None:
    """Call write(temporary path), then rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def shard_path(out_dir: str | Path, clip_id: str) -> Path:
    """Where a clip's shard lives."""
    return Path(out_dir) / SHARDS / f"{clip_id}.npz"


def write_shard(out_dir: str | Path, clip_id: str, arrays: dict[str, np.ndarray]) -> Path:
    """Save a clip's arrays (exactly SHARD_ARRAYS) as a compressed npz."""
    if set(arrays) != set(SHARD_ARRAYS):
        raise ValueError(f"shard arrays differ from SHARD_ARRAYS: {sorted(set(arrays) ^ set(SHARD_ARRAYS))}")
    path = shard_path(out_dir, clip_id)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    _atomic(path, write)
    return path


def read_shard(out_dir: str | Path, clip_id: str) -> dict[str, np.ndarray]:
    """A clip's arrays."""
    with np.load(shard_path(out_dir, clip_id)) as data:
        return {k: data[k] for k in data.files}


def write_record(out_dir: str | Path, key: str, record: dict) -> None:
    """Save a video's record (marks it done)."""
    _atomic(Path(out_dir) / RECORDS / f"{key}.json",
            lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=_json_default)))


def read_record(out_dir: str | Path, key: str) -> dict | None:
    """A video's record, or None when it has none (or an unreadable one)."""
    path = Path(out_dir) / RECORDS / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _json_default(value):
    """numpy scalars and arrays in JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def speaker_split(speakers: list[str], share: float = VALIDATION_SHARE) -> dict[str, str]:
    """{speaker: 'train' | 'validation'}: a speaker's split depends on its id alone (sha1 bucket), so adding
    videos never moves a speaker; with two or more speakers at least one is in each split."""
    unique = sorted(set(speakers))
    bucket = {s: int(hashlib.sha1(s.encode()).hexdigest()[:8], 16) / 16 ** 8 for s in unique}
    split = {s: "validation" if bucket[s] < share else "train" for s in unique}
    if len(unique) >= 2 and "validation" not in split.values():
        split[min(unique, key=bucket.get)] = "validation"
    if len(unique) >= 2 and "train" not in split.values():
        split[max(unique, key=bucket.get)] = "train"
    return split


def write_manifest(out_dir: str | Path, rows: list[dict], meta: dict) -> None:
    """manifest.json ({meta, clips}) and manifest.tsv (MANIFEST_COLUMNS, one clip a line)."""
    out = Path(out_dir)
    _atomic(out / "manifest.json",
            lambda tmp: tmp.write_text(json.dumps({**meta, "clips": rows}, indent=1, default=_json_default)))

    def write_tsv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, MANIFEST_COLUMNS, delimiter="\t", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    _atomic(out / "manifest.tsv", write_tsv)


def read_manifest(out_dir: str | Path) -> dict:
    """manifest.json of a prepared dataset."""
    return json.loads((Path(out_dir) / "manifest.json").read_text())
