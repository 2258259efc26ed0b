"""VIDEOS arguments (video files, folders, manifest TSVs) -> jobs, each with a speaker id and a kind.

A manifest is a TSV with a header holding a `file` column (paths relative to the manifest) and
optionally `speaker` and `kind`; ../shared/data/train/MANIFEST.tsv is one (it has no speaker column:
give one with --speakers). Without a speaker id a video is its own speaker (its file stem).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import TalkingHeadError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
MANIFEST_SUFFIXES = (".tsv",)
KEY_HASH_CHARS = 8  # hex digits of the path hash that make a video's key unique


@dataclass(frozen=True)
class VideoJob:
    """One video to prepare: absolute path, unique key (file stem + path hash), speaker id, kind label."""

    path: str
    key: str
    speaker: str
    kind: str  # free label from a manifest ("speech", "motion_only", ...) or "video"


def video_key(path: Path) -> str:
    """A file-system-safe key unique per absolute path: '<stem>-<8 hex digits>'."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:KEY_HASH_CHARS]
    return f"{path.stem}-{digest}"


def read_table(path: Path, what: str = "manifest") -> list[dict[str, str]]:
    """Rows of a TSV with a header; one-line errors for unreadable or headless files."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t")
            rows, columns = list(reader), reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TalkingHeadError(f"cannot read {what} '{path}' ({exc}); give a UTF-8 TSV with a 'file' column") from None
    if "file" not in columns:
        raise TalkingHeadError(f"{what} '{path}' has no 'file' column; add a header row with 'file' (and 'speaker')")
    return rows


def read_speakers(path: Path | None) -> dict[str, str]:
    """{file name or relative path: speaker id} from a TSV with 'file' and 'speaker' columns."""
    if path is None:
        return {}
    rows = read_table(path, "speaker table")
    if not rows or "speaker" not in rows[0]:
        raise TalkingHeadError(f"speaker table '{path}' has no 'speaker' column or no rows; give file<TAB>speaker "
                               "lines under a header")
    return {row["file"]: row["speaker"] for row in rows}


def _speaker_for(path: Path, rel: str, speakers: dict[str, str], row: dict[str, str] | None) -> str:
    """Speaker id: the manifest row's, else the speaker table's (by relative path, then name), else the stem."""
    if row and row.get("speaker"):
        return row["speaker"]
    return speakers.get(rel) or speakers.get(path.name) or path.stem


def expand_inputs(items: list[str], speakers: dict[str, str] | None = None) -> list[VideoJob]:
    """Files, folders (searched recursively) and manifests -> jobs, sorted by path, without repeats."""
    speakers = speakers or {}
    jobs: dict[str, VideoJob] = {}
    for item in items:
        path = Path(item)
        if not path.exists():
            raise TalkingHeadError(f"'{item}' does not exist; give video files, folders of videos or a manifest .tsv")
        if path.is_dir():
            manifest = path / "MANIFEST.tsv"
            found = _from_manifest(manifest, speakers) if manifest.is_file() else _from_folder(path, speakers)
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            found = _from_manifest(path, speakers)
        else:
            found = [_job(path, path.name, speakers, None)]
        for job in found:
            jobs.setdefault(job.path, job)
    if not jobs:
        raise TalkingHeadError(f"no videos found in {' '.join(items)}; give {', '.join(VIDEO_SUFFIXES)} files")
    return sorted(jobs.values(), key=lambda j: j.path)


def _job(path: Path, rel: str, speakers: dict[str, str], row: dict[str, str] | None) -> VideoJob:
    resolved = path.resolve()
    kind = (row or {}).get("kind") or "video"
    return VideoJob(str(resolved), video_key(resolved), _speaker_for(path, rel, speakers, row), kind)


def _from_folder(folder: Path, speakers: dict[str, str]) -> list[VideoJob]:
    """Every video under `folder`; the speaker table is looked up by path relative to the folder."""
    return [_job(p, str(p.relative_to(folder)), speakers, None) for p in sorted(folder.rglob("*"))
            if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()]


def _from_manifest(manifest: Path, speakers: dict[str, str]) -> list[VideoJob]:
    """Every row of a manifest TSV (paths relative to it)."""
    return [_job(manifest.parent / row["file"], row["file"], speakers, row) for row in read_table(manifest)]
