"""`talkinghead data prepare` on a tiny corpus built from real clips: shards and manifest, shot cuts,
bad videos skipped with a logged reason, a re-run that does no work, Ray shards equal to one worker's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.data.inputs import expand_inputs
from talkinghead.data.shards import SHARD_ARRAYS, read_manifest, read_shard, speaker_split
from talkinghead.errors import TalkingHeadError
from talkinghead.io import VideoWriter, load_audio, probe_video, read_video_frames

CUT_SECONDS = 2.0  # each test clip
SHOT_SECONDS = 1.2  # the two halves of the clip with a cut


def _cut(path: Path, seconds: float, skip_s: float = 0.0) -> tuple[list[np.ndarray], np.ndarray, float]:
    """(frames, 16 kHz audio, fps) of `seconds` of a video, from skip_s."""
    fps = probe_video(path).fps
    first, count = int(round(skip_s * fps)), int(round(seconds * fps))
    frames = []
    for i, frame in enumerate(read_video_frames(path)):
        if i >= first + count:
            break
        if i >= first:
            frames.append(frame)
    audio = load_audio(path)[int(round(skip_s * 16000)):int(round((skip_s + seconds) * 16000))]
    return frames, audio, fps


def _write(path: Path, frames: list[np.ndarray], audio: np.ndarray, fps: float) -> None:
    """Frames and audio -> MP4 with the package's writer."""
    h, w = frames[0].shape[:2]
    with VideoWriter(path, fps, w, h, audio=audio) as writer:
        for frame in frames:
            writer.write(frame)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, real_file) -> Path:
    """A folder: one 2 s talking clip, one clip with a shot cut, a corrupt file and a faceless video."""
    folder = tmp_path_factory.mktemp("corpus")
    frames, audio, fps = _cut(real_file("pcavs_vox_00473.mp4"), CUT_SECONDS)
    _write(folder / "talk.mp4", frames, audio, fps)
    a = _cut(real_file("pcavs_vox_00473.mp4"), SHOT_SECONDS, skip_s=2.0)
    b = _cut(real_file("pcavs_vox_620900105.mp4"), SHOT_SECONDS)
    _write(folder / "two_shots.mp4", a[0] + b[0], np.concatenate([a[1], b[1]]), fps)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    rng = np.random.default_rng(0)
    noise = [np.full((96, 96, 3), 128, np.uint8) + rng.integers(0, 8, (96, 96, 3), dtype=np.uint8) for _ in range(30)]
    _write(folder / "faceless.mp4", noise, 0.1 * rng.standard_normal(19200).astype(np.float32), 25.0)
    return folder


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> Path:
    """The corpus prepared with one worker."""
    out = tmp_path_factory.mktemp("dataset") / "ds"
    assert main(["data", "prepare", str(corpus), "--out", str(out), "--workers", "1"]) == 0
    return out


def test_clips_shards_and_manifest(prepared):
    manifest = read_manifest(prepared)
    clips = {c["id"].split("-")[0]: [] for c in manifest["clips"]}
    for c in manifest["clips"]:
        clips[c["id"].split("-")[0]].append(c)
    assert set(clips) == {"talk", "two_shots"}
    assert len(clips["talk"]) == 1 and clips["talk"][0]["frames"] == 50
    shard = read_shard(prepared, clips["talk"][0]["id"])
    assert set(shard) == set(SHARD_ARRAYS)
    t = len(shard["times"])
    assert shard["landmarks"].shape == (t, 478, 3) and shard["expression"].shape == (t, 52)
    assert shard["head"].shape == (t, 6) and shard["gaze"].shape == (t, 2) and shard["found"].all()
    assert shard["speech_states"].shape[1] == 384 and len(shard["speech_states"]) >= CUT_SECONDS * 50
    assert len(shard["audio"]) == int(CUT_SECONDS * 16000) and shard["voiced"].any()
    np.testing.assert_allclose(shard["times"][:2], [0.02, 0.06], atol=1e-6)
    assert (prepared / "manifest.tsv").read_text().startswith("id\tvideo\tspeaker\tsplit")
    report = json.loads((prepared / "report" / "report.json").read_text())
    assert report["cascade"][0]["clips"] == 3
    assert len(list((prepared / "report" / "plots").glob("*.png"))) == 11


def test_shot_cut_splits_the_video(prepared):
    shots = sorted((c for c in read_manifest(prepared)["clips"] if c["id"].startswith("two_shots")),
                   key=lambda c: c["start_s"])
    assert len(shots) == 2
    assert shots[0]["start_s"] == 0.0 and abs(shots[1]["start_s"] - SHOT_SECONDS) < 0.05
    assert all(abs(c["seconds"] - SHOT_SECONDS) < 0.05 for c in shots)


def test_bad_videos_are_skipped_with_a_logged_reason(prepared):
    records = {p.name.split("-")[0]: json.loads(p.read_text()) for p in (prepared / "records").glob("*.json")}
    assert records["corrupt"]["status"] == "skipped" and "corrupt.mp4" in records["corrupt"]["reason"]
    assert records["faceless"]["status"] == "skipped" and "no face" in records["faceless"]["reason"]
    log = (prepared / "prepare.log").read_text()
    assert "skipped corrupt.mp4" in log and "skipped faceless.mp4: no face found" in log


def test_rerun_does_no_work(prepared, corpus, capsys):
    shards = sorted((prepared / "shards").glob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in shards]
    records = [p.stat().st_mtime_ns for p in sorted((prepared / "records").glob("*.json"))]
    capsys.readouterr()
    assert main(["data", "prepare", str(corpus), "--out", str(prepared), "--workers", "1"]) == 0
    assert "(0 prepared, 4 already done; 2 of the 4 videos skipped" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in shards] == stamps
    assert [p.stat().st_mtime_ns for p in sorted((prepared / "records").glob("*.json"))] == records


def test_ray_shards_equal_one_worker_shards(prepared, corpus, tmp_path):
    pytest.importorskip("ray", reason="the 'data' extra (ray) is not installed")
    out = tmp_path / "ray"
    assert main(["data", "prepare", str(corpus / "talk.mp4"), str(corpus / "two_shots.mp4"), "--out", str(out),
                 "--workers", "2"]) == 0
    assert "ray: 2 CPU(s)" in (out / "prepare.log").read_text()
    ids = sorted(p.stem for p in (out / "shards").glob("*.npz"))
    assert ids == sorted(p.stem for p in (prepared / "shards").glob("*.npz")) and len(ids) == 3
    for clip_id in ids:
        a, b = read_shard(prepared, clip_id), read_shard(out, clip_id)
        for name in SHARD_ARRAYS:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{clip_id}: {name}")


def test_inputs_speakers_and_splits(tmp_path, corpus):
    (tmp_path / "m.tsv").write_text(f"file\tspeaker\n{corpus / 'talk.mp4'}\tann\n{corpus / 'two_shots.mp4'}\tbob\n")
    jobs = expand_inputs([str(tmp_path / "m.tsv")])
    assert [j.speaker for j in jobs] == ["ann", "bob"]
    with pytest.raises(TalkingHeadError, match="does not exist"):
        expand_inputs([str(tmp_path / "missing")])
    speakers = [f"s{i}" for i in range(20)]
    split = speaker_split(speakers)
    assert split == speaker_split(list(reversed(speakers)))  # depends on the ids only
    assert set(split.values()) == {"train", "validation"} and speaker_split(["a", "b"]).keys() == {"a", "b"}


def test_without_ray_it_runs_in_one_process_and_says_how_to_get_parallelism(monkeypatch):
    import sys

    from talkinghead.data.runner import RAY_HINT, _import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    lines = []
    assert _import_ray(lines.append) is None
    assert lines == [f"ray is not installed: preparing in one process; {RAY_HINT}"]
    assert "pip install 'talkinghead[data]'" in RAY_HINT
