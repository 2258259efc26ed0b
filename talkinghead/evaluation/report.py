"""Evaluation reports: JSON with stable keys, a Markdown table, aperture plots and contact sheets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .metrics import SILENCE_MIN_SECONDS, runs
from .protocols import ClipResult
from .variants import FROZEN, REAL

REPORT_VERSION = 1
SHEET_COLUMNS = 6  # frames per row of a contact sheet
SHEET_TILE = 160  # pixels, tile height

# column key -> (header, format) for the Markdown tables
COLUMNS = {
    "valid": ("valid", "{}"),
    "face_found": ("face found", "{:.0%}"),
    "lipsync_r": ("lip-sync r", "{:.2f}"),
    "lipsync_best_lag": ("best lag", "{:+d}"),
    "lipsync_best_r": ("r at best", "{:.2f}"),
    "jaw_open_r": ("jawOpen r", "{:.2f}"),
    "lmd": ("LMD (IOD)", "{:.3f}"),
    "silence_rest_share": ("rest in silence", "{:.0%}"),
    "silence_rest_pooled": ("rest, pooled", "{:.0%}"),
    "silence_frames": ("silent frames", "{:.0f}"),
    "speech_longest_freeze_s": ("longest freeze (s)", "{:.2f}"),
    "aperture_loudness_r": ("aperture~loudness r", "{:.2f}"),
    "aperture_speech_std": ("aperture std", "{:.3f}"),
    "identity_distance": ("identity dist", "{:.3f}"),
    "jitter_ratio": ("jitter / real", "{:.2f}"),
    "blinks_per_minute": ("blinks/min", "{:.0f}"),
    "head_spread_ratio": ("head spread / real", "{:.2f}"),
    "audio_motion_alignment": ("head~speech r (3 s)", "{:.2f}"),
    "motion_fd": ("motion FD", "{:.2f}"),
    "background_change": ("background diff", "{:.1f}"),
    "sharpness_ratio": ("sharpness / portrait", "{:.2f}"),
    "realtime_factor": ("x real time", "{:.1f}"),
}
SELF_COLUMNS = {k: COLUMNS[k] for k in (
    "lipsync_r", "lipsync_best_lag", "lipsync_best_r", "jaw_open_r", "lmd", "silence_rest_share", "silence_frames",
    "speech_longest_freeze_s", "aperture_speech_std", "identity_distance", "jitter_ratio", "blinks_per_minute",
    "head_spread_ratio", "audio_motion_alignment", "background_change", "sharpness_ratio", "realtime_factor")}
SUMMARY_SELF_COLUMNS = {  # the per-clip columns, with the pooled silence share after the mean one
    k: COLUMNS[k] for key in SELF_COLUMNS for k in ((key, "silence_rest_pooled") if key == "silence_rest_share" else (key,))}
CROSS_COLUMNS = {k: COLUMNS[k] for k in (
    "valid", "face_found", "identity_distance", "silence_rest_share", "aperture_loudness_r", "aperture_speech_std",
    "blinks_per_minute", "audio_motion_alignment", "realtime_factor")}

def _clean(value):
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(path: Path, report: dict) -> None:
    path.write_text(json.dumps(_clean({"version": REPORT_VERSION, **report}), indent=2) + "\n")


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    try:
        if fmt == "{:+d}":
            return fmt.format(int(round(value)))
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def markdown_table(rows: list[dict], keys: list[str], columns: dict[str, tuple[str, str]]) -> str:
    """Rows -> a Markdown table with identifying `keys` first, then `columns` present in the rows."""
    present = [k for k in columns if any(k in r for r in rows)]
    header = keys + [columns[k][0] for k in present]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [str(r.get(k, "")) for k in keys] + [_cell(r.get(k), columns[k][1]) for k in present]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_rows(summary: dict[str, dict]) -> list[dict]:
    return [{"system": system, **values} for system, values in summary.items()]


def write_markdown(path: Path, report: dict) -> None:
    parts = ["# talkinghead evaluation", "",
             f"Command: `{report.get('command', '')}`", ""]
    if "self_reenactment" in report:
        section = report["self_reenactment"]
        parts += ["## Self-reenactment (first frame + real audio, compared with the real video)", "",
                  "Mean over clips (silent frames: their total; rest, pooled: the share of all those frames at rest). "
                  "`real` is the real video against itself, `frozen` its first frame held still.", "",
                  markdown_table(summary_rows(section["summary"]), ["system"],
                                 {"runs": ("clips", "{:d}"), **SUMMARY_SELF_COLUMNS, "motion_fd": COLUMNS["motion_fd"]}),
                  "", "### Per clip", "",
                  markdown_table(section["rows"], ["clip", "system"], SELF_COLUMNS), ""]
    if "cross_identity" in report:
        section = report["cross_identity"]
        parts += ["## Cross-identity (every portrait with each speech clip)", "",
                  markdown_table(summary_rows(section["summary"]), ["system"], {"runs": ("runs", "{:d}"), **CROSS_COLUMNS}),
                  "", "### Per run", "",
                  markdown_table(section["rows"], ["portrait", "speech", "system"], CROSS_COLUMNS), ""]
    parts += ["Metric definitions: docs/evaluation.md.", ""]
    path.write_text("\n".join(parts))


def plot_apertures(path: Path, result: ClipResult) -> None:
    """Mouth aperture over time for every system, with the scored silent stretches shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3.2), dpi=100)
    t = np.arange(len(result.voiced)) / result.fps
    for start, stop in runs(~result.voiced):
        if (stop - start) / result.fps >= SILENCE_MIN_SECONDS:
            ax.axvspan(start / result.fps, stop / result.fps, color="0.9", lw=0)
    styles = {REAL: dict(color="black", lw=1.8), FROZEN: dict(color="0.6", lw=1, ls="--")}
    for system, series in result.apertures.items():
        n = min(len(series), len(t))
        ax.plot(t[:n], series[:n], label=system, **styles.get(system, dict(lw=1.2)))
    ax.set_xlabel("seconds (grey: silent stretches >= 0.3 s)")
    ax.set_ylabel("mouth aperture (IOD)")
    ax.set_title(result.name)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=8, ncol=len(result.apertures))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def contact_sheet(path: Path, result: ClipResult) -> None:
    """One row per system, SHEET_COLUMNS sampled frames each, labelled."""
    systems = [s for s in result.samples if s != FROZEN]
    indices = sorted(result.samples[systems[0]])
    if len(indices) > SHEET_COLUMNS:
        indices = [indices[i] for i in np.linspace(0, len(indices) - 1, SHEET_COLUMNS).round().astype(int)]
    label_w = 90
    tiles = []
    for system in systems:
        row = []
        for i in indices:
            frame = result.samples[system].get(i)
            if frame is None:
                continue
            h, w = frame.shape[:2]
            row.append(Image.fromarray(frame).resize((max(1, round(w * SHEET_TILE / h)), SHEET_TILE), Image.BILINEAR))
        tiles.append((system, row))
    width = label_w + max(sum(im.width for im in row) for _, row in tiles)
    sheet = Image.new("RGB", (width, SHEET_TILE * len(tiles) + 20), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), f"{result.name}: frames " + ", ".join(f"{i / result.fps:.1f}s" for i in indices), fill="black")
    for r, (system, row) in enumerate(tiles):
        y = 20 + r * SHEET_TILE
        draw.text((4, y + SHEET_TILE // 2), system, fill="black")
        x = label_w
        for im in row:
            sheet.paste(im, (x, y))
            x += im.width
    sheet.save(path)
