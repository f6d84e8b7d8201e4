"""Bench reports: JSON lines of every result, a markdown leaderboard with bootstrap confidence
intervals over calls, and plots (extra ``plot``).

* :func:`write_jsonl` / :func:`read_jsonl` – one :class:`~voicepriv.bench.runner.Result` a line.
* :func:`summarise` – per system and layout: mean of every metric and its 95 % bootstrap
  interval, resampling *calls* (so a call's items stay together), with a fixed seed.
* :func:`leaderboard` – the summary as a markdown table, best agent retention at lowest leakage
  first.
* :func:`plots` – ``leakage_retention.png`` (customer leakage against agent retention as the
  detection threshold sweeps, one curve per system) and ``si_sdri_by_overlap.png``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import attrs
import numpy as np

from voicepriv.bench.runner import Result
from voicepriv.errors import BenchError, MissingExtraError

__all__ = [
    "METRICS",
    "Summary",
    "leaderboard",
    "plots",
    "read_jsonl",
    "summarise",
    "write_jsonl",
]

#: Metrics summarised in the leaderboard, in column order, with their headers.
METRICS: Final = (
    ("leakage_pct", "leakage % ↓"),
    ("leakage_s", "leakage s ↓"),
    ("leakage_energy_pct", "leak energy % ↓"),
    ("retention_pct", "retention % ↑"),
    ("si_sdr_db", "SI-SDR dB ↑"),
    ("si_sdri_db", "SI-SDRi dB ↑"),
    ("sdr_db", "SDR dB ↑"),
    ("der_pct", "agent DER % ↓"),
    ("jer_pct", "agent JER % ↓"),
    ("rtf", "RTF ↓"),
)
_BOOTSTRAP: Final = 1000
_OVERLAP_BINS: Final = (0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 100.0)


def write_jsonl(results: Iterable[Result], path: str | Path, *, append: bool = False) -> int:
    """Write one JSON object per result; return how many were written."""
    count = 0
    with Path(path).open("a" if append else "w", encoding="utf-8") as handle:
        for result in results:
            handle.write(json.dumps(attrs.asdict(result), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[Result]:
    """Read results written by :func:`write_jsonl`.

    :raises BenchError: a line is not a result (its number is named).
    """
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BenchError(f"{source}: cannot read results ({exc})") from exc
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            data["curve"] = tuple(tuple(point) for point in data.get("curve", ()))
            out.append(Result(**data))
        except (ValueError, TypeError) as exc:
            raise BenchError(f"{source} line {number}: not a bench result ({exc})") from exc
    return out


@attrs.frozen(kw_only=True)
class Summary:
    """One leaderboard row: a system on a layout.

    :param items: results with status ``"ok"``.
    :param refused: results where the separator refused the layout.
    :param errors: results that failed.
    :param means: mean of each metric over calls.
    :param intervals: 95 % bootstrap interval of each mean.
    :param peak_mib: largest traced peak memory.
    """

    system: str
    layout: str
    baseline: bool
    items: int
    refused: int
    errors: int
    means: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    peak_mib: float | None
    curve: tuple[tuple[float, float, float], ...]
    message: str = ""


def _bootstrap(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    if values.size == 1:
        return float(values[0]), float(values[0])
    picks = rng.integers(values.size, size=(_BOOTSTRAP, values.size))
    means = values[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def summarise(results: Sequence[Result], *, seed: int = 0) -> list[Summary]:
    """Per (system, layout): means and bootstrap intervals over calls, sorted for display."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((result.system, result.layout), []).append(result)
    rows = []
    for (system, layout), group in groups.items():
        ok = [r for r in group if r.status == "ok"]
        rng = np.random.default_rng(seed)
        means: dict[str, float] = {}
        intervals: dict[str, tuple[float, float]] = {}
        for metric, _header in METRICS:
            per_call: dict[str, list[float]] = {}
            for r in ok:
                value = getattr(r, metric)
                if value is not None:
                    per_call.setdefault(r.call_id, []).append(float(value))
            if not per_call:
                continue
            values = np.array([np.mean(v) for v in per_call.values()])
            means[metric] = float(values.mean())
            intervals[metric] = _bootstrap(values, rng)
        peaks = [r.peak_mib for r in ok if r.peak_mib is not None]
        curves = np.array([r.curve for r in ok if r.curve]) if ok else np.zeros((0, 0, 3))
        curve = (
            tuple(tuple(float(v) for v in point) for point in curves.mean(axis=0))
            if curves.size
            else ()
        )
        problems = [r.message for r in group if r.status != "ok" and r.message]
        rows.append(
            Summary(
                system=system,
                layout=layout,
                baseline=group[0].baseline,
                items=len(ok),
                refused=sum(r.status == "refused" for r in group),
                errors=sum(r.status == "error" for r in group),
                means=means,
                intervals=intervals,
                peak_mib=max(peaks) if peaks else None,
                curve=curve,  # type: ignore[arg-type]
                message=problems[0] if problems else "",
            )
        )

    def order(row: Summary) -> tuple[str, int, float, float]:
        return (
            row.layout,
            0 if row.items else 1,
            row.means.get("leakage_pct", 1e9),
            -row.means.get("retention_pct", 0.0),
        )

    return sorted(rows, key=order)


def _cell(row: Summary, metric: str) -> str:
    if metric not in row.means:
        return "–"
    mean = row.means[metric]
    low, high = row.intervals[metric]
    digits = 3 if metric == "rtf" else 1
    if low == high:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def leaderboard(results: Sequence[Result], *, title: str = "Separation bench") -> str:
    """The markdown leaderboard: one table per layout, mean [95 % CI over calls] per metric."""
    rows = summarise(results)
    parts = [f"# {title}\n"]
    calls = len({r.call_id for r in results})
    parts.append(
        f"{calls} calls; mean over calls with a 95 % bootstrap interval ({_BOOTSTRAP} resamples "
        "of calls). Leakage and retention at the default threshold (-30 dB under the party's "
        "speech level); baselines in *italics*.\n"
    )
    for layout in sorted({r.layout for r in rows}):
        parts.append(f"\n## {layout}\n")
        header = ["system", "calls", *[h for _, h in METRICS], "peak MiB"]
        parts.append("| " + " | ".join(header) + " |")
        parts.append("| " + " | ".join(["---"] * len(header)) + " |")
        for row in (r for r in rows if r.layout == layout):
            name = f"*{row.system}*" if row.baseline else f"**{row.system}**"
            if not row.items:
                why = "refused" if row.refused else "failed"
                note = row.message.replace("|", "/")[:90]
                parts.append(f"| {name} | 0 | {why}: {note} |" + " |" * (len(header) - 3))
                continue
            cells = [_cell(row, m) for m, _ in METRICS]
            peak = "–" if row.peak_mib is None else f"{row.peak_mib:.1f}"
            parts.append(f"| {name} | {row.items} | " + " | ".join(cells) + f" | {peak} |")
    return "\n".join(parts) + "\n"


def plots(results: Sequence[Result], out: str | Path) -> list[Path]:
    """Write the leakage-vs-retention and SI-SDRi-by-overlap plots as PNG under *out*.

    :raises MissingExtraError: matplotlib is not installed (extra ``plot``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtraError(
            "bench plots need matplotlib: pip install 'voicepriv[plot]'"
        ) from exc
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows = summarise(results)
    written = []
    layouts = sorted({r.layout for r in rows})
    figure, axes = plt.subplots(1, len(layouts), figsize=(6 * len(layouts), 5), squeeze=False)
    for axis, layout in zip(axes[0], layouts, strict=True):
        for row in (r for r in rows if r.layout == layout and r.curve):
            points = np.array(row.curve)
            style = "--" if row.baseline else "-"
            axis.plot(points[:, 1], points[:, 2], style, marker="o", markersize=3, label=row.system)
        axis.set_xlabel("customer leakage (% of customer-only seconds)")
        axis.set_ylabel("agent retention (% of agent-only seconds)")
        axis.set_title(f"{layout}: leakage vs retention over thresholds")
        axis.set_xlim(-2, 102)
        axis.set_ylim(-2, 102)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path = folder / "leakage_retention.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    written.append(path)

    figure, axes = plt.subplots(1, len(layouts), figsize=(6 * len(layouts), 5), squeeze=False)
    centres = [(a + b) / 2 for a, b in itertools.pairwise(_OVERLAP_BINS)]
    for axis, layout in zip(axes[0], layouts, strict=True):
        by_system: dict[str, list[Result]] = {}
        for r in results:
            if r.layout == layout and r.status == "ok" and r.si_sdri_db is not None:
                by_system.setdefault(r.system, []).append(r)
        for system, group in sorted(by_system.items()):
            overlap = np.array([r.overlap_pct for r in group])
            value = np.array([r.si_sdri_db for r in group], dtype=np.float64)
            index = np.digitize(overlap, _OVERLAP_BINS[1:-1])
            xs, ys = [], []
            for b, centre in enumerate(centres):
                if np.any(index == b):
                    xs.append(centre)
                    ys.append(float(value[index == b].mean()))
            axis.plot(xs, ys, marker="o", label=system)
        axis.set_xlabel("overlap (% of speech)")
        axis.set_ylabel("SI-SDRi (dB)")
        axis.set_title(f"{layout}: SI-SDRi by overlap ratio")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path = folder / "si_sdri_by_overlap.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    written.append(path)
    return written
