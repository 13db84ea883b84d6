"""The report's numbers: the Pass@k summary over seeds and the problems lost/gained against the base.

Summary figures per (variant, lr) group, benchmark and metric (``pass@k``, ``maj@k``):

* ``mean``: mean over seeds of each run's figure (its ``metrics.json``),
* ``sd``: standard deviation across seeds (ddof=1; NaN with one seed), the training spread,
* ``ci_low``/``ci_high``: 95% bootstrap CI over problems of the seed-averaged figure (per-problem
  values averaged over the group's seeds, then ``summarize_problems``), the benchmark spread.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from riskrl.evaluation.metrics import KMETRIC, MACRO, metric_columns, summarize_problems
from riskrl.report.runs import Run

SUMMARY_COLUMNS = (
    "label",
    "variant",
    "lr",
    "seeds",
    "benchmark",
    "metric",
    "k",
    "mean",
    "sd",
    "ci_low",
    "ci_high",
)
SHOW_IDS = 5  # problem ids listed per lost/gained cell


def group_label(variant: str, lr: float | None) -> str:
    """``riskpo_batch lr=0.0003``; the base is just ``base``."""
    return variant if lr is None else f"{variant} lr={lr:g}"


def pooled_problems(runs: list[Run]) -> pd.DataFrame:
    """Per-problem figures averaged over runs (seeds), matched on (benchmark, problem_id)."""
    table = pd.concat([r.problems for r in runs], ignore_index=True)
    cols = metric_columns(table)
    pooled = table.groupby(["benchmark", "problem_id"], sort=True)[["n", "c", *cols]].mean()
    pooled["n"] = table.groupby(["benchmark", "problem_id"], sort=True)["n"].min()
    return pooled.reset_index()


def passk_summary(
    groups: dict[tuple[str, float | None], list[Run]], *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Long table (``SUMMARY_COLUMNS``), one row per group x benchmark (incl. macro) x k-metric."""
    rows = []
    for (variant, lr), runs in groups.items():
        pooled = summarize_problems(pooled_problems(runs), n_boot=n_boot, seed=seed)
        for bench in _benchmarks(runs):
            keys = [k for k in runs[0].metrics.get(bench, {}) if KMETRIC.match(k)]
            for key in keys:
                vals = np.array([r.metrics.get(bench, {}).get(key, np.nan) for r in runs], dtype=float)
                vals = vals[np.isfinite(vals)]
                lo, hi = pooled.get(bench, {}).get(f"{key}_ci", [np.nan, np.nan])
                m = KMETRIC.match(key)
                rows.append(
                    (
                        group_label(variant, lr),
                        variant,
                        lr,
                        len(vals),
                        bench,
                        f"{m[1]}@k",
                        int(m[2]),
                        float(vals.mean()) if len(vals) else np.nan,
                        float(vals.std(ddof=1)) if len(vals) > 1 else np.nan,
                        lo,
                        hi,
                    )
                )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _benchmarks(runs: list[Run]) -> list[str]:
    names = sorted({b for r in runs for b in r.metrics if b != MACRO})
    return [*names, MACRO] if any(MACRO in r.metrics for r in runs) else names


def _cell(mean: float, sd: float, lo: float, hi: float) -> str:
    if not math.isfinite(mean):
        return "–"
    text = f"{mean:.3f}"
    if math.isfinite(sd):
        text += f" ± {sd:.3f}"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{lo:.3f}, {hi:.3f}]"
    return text


def passk_markdown(summary: pd.DataFrame) -> str:
    """One Markdown table per benchmark (macro last): a row per group, pass@k columns, then maj@k_max."""
    if summary.empty:
        return "_no Pass@k figures_\n"
    parts = [
        "Cells: mean over seeds ± sd across seeds [95% bootstrap CI over problems of the seed-averaged figure].\n"
    ]
    benches = [b for b in summary["benchmark"].unique() if b != MACRO]
    for bench in sorted(benches) + ([MACRO] if (summary["benchmark"] == MACRO).any() else []):
        df = summary[summary["benchmark"] == bench]
        ks = sorted(df.loc[df["metric"] == "pass@k", "k"].unique())
        maj = df.loc[df["metric"] == "maj@k", "k"]
        cols = [("pass@k", k) for k in ks] + ([("maj@k", int(maj.max()))] if len(maj) else [])
        header = ["run", "seeds"] + [m.replace("k", str(k)) for m, k in cols]
        lines = [f"### {bench}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, g in df.groupby("label", sort=False):
            cells = [label, str(int(g["seeds"].max()))]
            for metric, k in cols:
                hit = g[(g["metric"] == metric) & (g["k"] == k)]
                r = hit.iloc[0] if len(hit) else None
                cells.append("–" if r is None else _cell(r["mean"], r["sd"], r["ci_low"], r["ci_high"]))
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def lost_gained(runs: list[Run], base: Run) -> pd.DataFrame:
    """Per run and benchmark: problems the base solved at least once and the run never (lost),
    and the reverse (gained); matched on (benchmark, problem_id) present in both."""
    ref = base.problems.set_index(["benchmark", "problem_id"])["c"]
    rows = []
    for run in runs:
        cur = run.problems.set_index(["benchmark", "problem_id"])["c"]
        both = pd.concat({"base": ref, "run": cur}, axis=1, join="inner")
        for bench in sorted(both.index.get_level_values(0).unique()):
            b = both.loc[bench]
            lost = sorted(b.index[(b["base"] > 0) & (b["run"] == 0)], key=_id_key)
            gained = sorted(b.index[(b["base"] == 0) & (b["run"] > 0)], key=_id_key)
            rows.append(
                (
                    run.name,
                    run.variant,
                    run.lr,
                    run.seed,
                    bench,
                    len(b),
                    len(lost),
                    len(gained),
                    lost,
                    gained,
                )
            )
    cols = [
        "run",
        "variant",
        "lr",
        "seed",
        "benchmark",
        "num_common",
        "lost",
        "gained",
        "lost_ids",
        "gained_ids",
    ]
    return pd.DataFrame(rows, columns=cols)


def _id_key(pid: str) -> tuple[int, float, str]:
    try:
        return (0, float(pid), "")
    except ValueError:
        return (1, 0.0, pid)


def lost_gained_markdown(changes: pd.DataFrame) -> str:
    if changes.empty:
        return "_no problems in common with the base_\n"
    header = ["run", "benchmark", "problems", "lost", "gained", "lost ids", "gained ids"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in changes.itertuples(index=False):
        lines.append(
            f"| {r.run} | {r.benchmark} | {r.num_common} | {r.lost} | {r.gained} | "
            f"{_ids(r.lost_ids)} | {_ids(r.gained_ids)} |"
        )
    return "\n".join(lines) + "\n"


def _ids(ids: list[str]) -> str:
    if not ids:
        return "–"
    shown = ", ".join(f"`{i}`" for i in ids[:SHOW_IDS])
    return shown + (f" (+{len(ids) - SHOW_IDS})" if len(ids) > SHOW_IDS else "")
