"""Run prepare.process_video over the jobs: in this process (--workers 1, or without Ray) or as Ray tasks,
one per video, on a local Ray started here (--workers N CPUs) or on a cluster (--address).

Each task writes its own shards and record into the dataset folder, so on a cluster that folder must be
on storage every node sees. Finished videos (a record with the same settings and the same file size and
modification time) are not sent again: a re-run does no work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .inputs import VideoJob
from .prepare import PrepareConfig, _source_stamp, process_video
from .shards import read_record

RAY_HINT = "pip install 'talkinghead[data]' for parallel preparation (--workers N, --address)"
RAY_OBJECT_STORE_BYTES = 256 * 1024 ** 2  # records are small: keep Ray's shared memory modest
Log = Callable[[str], None]


def is_done(job: VideoJob, out_dir: str, config: PrepareConfig) -> dict | None:
    """The job's record when it is finished with these settings and this file, else None."""
    record = read_record(out_dir, job.key)
    if record and record.get("settings") == config.digest() and record.get("source") == _source_stamp(job.path):
        return record
    return None


def _describe(record: dict) -> str:
    """One log line for a finished video."""
    name = Path(record["path"]).name
    if record["status"] != "ok":
        return f"skipped {name}: {record['reason']}"
    seconds = sum(c["seconds"] for c in record["clips"])
    return f"prepared {name}: {len(record['clips'])} clip(s), {seconds:.1f} s, in {record['wall_s']:.1f} s"


def run_jobs(jobs: list[VideoJob], out_dir: str, config: PrepareConfig, workers: int, address: str | None,
             log: Log) -> tuple[list[dict], dict]:
    """Records of every job (finished ones read back) and a summary {done_before, processed, mode, workers}."""
    records, todo = {}, []
    for job in jobs:
        record = is_done(job, out_dir, config)
        if record is None:
            todo.append(job)
        else:
            records[job.key] = record
    summary = {"done_before": len(records), "processed": len(todo), "mode": "serial", "workers": 1}
    if todo and (workers > 1 or address):
        ray = _import_ray(log)
        if ray is not None:
            summary.update(mode="ray", workers=_run_on_ray(ray, todo, out_dir, config, workers, address, log, records))
            return [records[j.key] for j in jobs], summary
    for job in todo:
        records[job.key] = process_video(job, out_dir, config)
        log(_describe(records[job.key]))
    return [records[j.key] for j in jobs], summary


def _import_ray(log: Log):
    """The ray module, or None (with a log line saying how to get it)."""
    try:
        import ray
    except ImportError:
        log(f"ray is not installed: preparing in one process; {RAY_HINT}")
        return None
    return ray


def _run_on_ray(ray, todo: list[VideoJob], out_dir: str, config: PrepareConfig, workers: int, address: str | None,
                log: Log, records: dict) -> int:
    """Run the jobs as Ray tasks (one CPU each), filling `records` as they finish; returns the CPUs used."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     object_store_memory=RAY_OBJECT_STORE_BYTES)
    cpus = int(ray.cluster_resources().get("CPU", workers))
    log(f"ray: {cpus} CPU(s){' at ' + address if address else ' (local)'}, {len(todo)} video(s) to prepare")
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(process_video)
        pending = {task.remote(job, str(out_dir), config): job for job in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                record = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # a worker that died (e.g. a native crash in a decoder)
                record = {"status": "skipped", "reason": f"worker failed: {type(exc).__name__}", "clips": [],
                          "path": job.path, "key": job.key, "speaker": job.speaker, "kind": job.kind}
            records[job.key] = record
            log(_describe(record))
    finally:
        if started_here:
            ray.shutdown()
    return cpus
