"""The curation report: report.md, report.json and one plot per filter (the statistic of every clip
against its threshold), written into DATASET/report/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .filters import FILTERS, CurationConfig, passes

PLOT_SIZE_IN = (5.0, 3.0)  # inches at 100 dpi


def _stage_table(records: list[dict]) -> dict[str, float]:
    """Seconds spent per stage over every video prepared in this run (records with 'stage_s')."""
    totals: dict[str, float] = {}
    for record in records:
        for stage, seconds in (record.get("stage_s") or {}).items():
            totals[stage] = totals.get(stage, 0.0) + seconds
    return {k: round(v, 2) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def build_report(cascade: list[dict], clips: list[dict], records: list[dict], run: dict) -> dict:
    """The report as a dict (report.json)."""
    skipped = [{"video": Path(r["path"]).name, "reason": r["reason"]} for r in records if r["status"] != "ok"]
    kept = [c for c in clips if c["kept"]]
    speech = [c for c in clips if c["speech_kept"]]
    return {"run": run, "cascade": cascade, "skipped_videos": skipped, "stage_seconds": _stage_table(records),
            "videos": len(records), "clips": len(clips),
            "kept": {"clips": len(kept), "minutes": round(sum(c["seconds"] for c in kept) / 60, 2)},
            "speech_kept": {"clips": len(speech), "minutes": round(sum(c["seconds"] for c in speech) / 60, 2),
                            "speakers": len({c["speaker"] for c in speech})},
            "per_clip": [{"id": c["id"], "speaker": c["speaker"], "split": c["split"], "seconds": c["seconds"],
                          "removed_by": c["removed_by"], **c["stats"]} for c in clips]}


def markdown(report: dict) -> str:
    """report.md: the cascade table, what was skipped, where the time went."""
    run = report["run"]
    lines = ["# Curation report", "",
             f"{report['videos']} videos -> {report['clips']} clips; kept {report['kept']['clips']} clips "
             f"({report['kept']['minutes']} min), for lip sync {report['speech_kept']['clips']} clips "
             f"({report['speech_kept']['minutes']} min, {report['speech_kept']['speakers']} speakers).", "",
             f"Run: {run['mode']}, {run['workers']} worker(s), {run['processed']} video(s) prepared, "
             f"{run['done_before']} already done, wall {run['wall_s']:.1f} s.", "",
             "| filter | keeps | threshold | removed | clips left | minutes left |", "|---|---|---|---|---|---|"]
    for row in report["cascade"]:
        lines.append(f"| {row['filter']} | {row.get('what', '')} | {row['threshold']} | {row['removed']} | "
                     f"{row['clips']} | {row['minutes']} |")
    lines += ["", "Visual filters decide whether a clip is kept (motion); the speech filters whether it is also "
              "used for lip sync.", ""]
    if report["skipped_videos"]:
        lines += ["## Skipped videos", ""] + [f"- {s['video']}: {s['reason']}" for s in report["skipped_videos"]] + [""]
    if report["stage_seconds"]:
        total = sum(report["stage_seconds"].values())
        lines += ["## Where the time goes (seconds spent in each stage inside the workers, summed over videos)", "", "| stage | seconds | share |",
                  "|---|---|---|"]
        lines += [f"| {k} | {v:.1f} | {100 * v / max(total, 1e-9):.0f}% |" for k, v in report["stage_seconds"].items()]
    return "\n".join(lines) + "\n"


def plot_filters(clips: list[dict], config: CurationConfig, folder: Path) -> list[Path]:
    """One PNG per filter: each clip's statistic (filled where it passes this filter) and the threshold line."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, stat, kind, field, what, _ in FILTERS:
        values = np.array([c["stats"].get(stat, np.nan) for c in clips], np.float64)
        fig, ax = plt.subplots(figsize=PLOT_SIZE_IN, dpi=100)
        order = np.argsort(np.nan_to_num(values, nan=-np.inf))
        y = np.arange(len(values))
        ok = np.array([passes(v, kind, getattr(config, field)) for v in values], bool)[order]
        ax.scatter(values[order][ok], y[ok], s=14, c="tab:blue", label="passes")
        ax.scatter(values[order][~ok], y[~ok], s=14, facecolors="none", edgecolors="tab:red", label="fails")
        ax.axvline(getattr(config, field), color="k", ls="--", lw=1,
                   label=f"threshold ({'min' if kind == 'min' else 'max'}) {getattr(config, field):g}")
        ax.set_xlabel(stat)
        ax.set_ylabel("clips (sorted)")
        ax.set_title(f"{name}: {what}", fontsize=9)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = folder / f"{name.replace(' ', '_')}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(out_dir: Path, report: dict, clips: list[dict], config: CurationConfig) -> Path:
    """report.md, report.json and plots/ under out_dir/report; returns the Markdown path."""
    folder = Path(out_dir) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=float))
    md = folder / "report.md"
    md.write_text(markdown(report))
    plot_filters(clips, config, folder / "plots")
    return md
