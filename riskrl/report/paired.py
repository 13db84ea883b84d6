"""Paired differences against the baseline variant: each variant minus ``grpo`` at the same lr.

Per benchmark and macro, overall and by difficulty bucket (the base model's pass@1 on the
problem), the difference of the seed-averaged pass@k (k = 1, 4, 16 where the benchmark has
them) with a 95% CI from ``riskrl.evaluation.metrics.paired_bootstrap_diff`` (problems resampled
once for both policies, seeds of each resampled), and a verdict: ``better`` / ``worse`` when the
CI excludes 0, else ``no clear difference``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from riskrl.evaluation.metrics import MACRO, _subseed, paired_bootstrap_diff, verdict
from riskrl.report.runs import Run
from riskrl.report.tables import group_label

BASELINE = "grpo"
PAIRED_KS = (1, 4, 16)
ALL = "all"
#: difficulty buckets of the base's pass@1 on a problem: [lo, hi), the last one closed.
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("[0, 0.1)", 0.0, 0.1),
    ("[0.1, 0.5)", 0.1, 0.5),
    ("[0.5, 1]", 0.5, math.inf),
)
PAIRED_COLUMNS = (
    "label",
    "variant",
    "baseline",
    "lr",
    "benchmark",
    "bucket",
    "k",
    "diff",
    "ci_low",
    "ci_high",
    "verdict",
    "problems",
    "seeds",
    "baseline_seeds",
)


def difficulty_bucket(base_pass1: np.ndarray) -> np.ndarray:
    """Bucket label of each problem from the base's pass@1 (BUCKETS)."""
    x = np.asarray(base_pass1, dtype=np.float64)
    out = np.full(x.shape, "", dtype=object)
    for name, lo, hi in BUCKETS:
        out[(x >= lo) & (x < hi)] = name
    return out


def _stack(runs: list[Run], keys: pd.MultiIndex, cols: list[str]) -> np.ndarray:
    """(seeds, problems, len(cols)) per-problem figures of ``runs`` on the problems ``keys``."""
    return np.stack(
        [r.problems.set_index(["benchmark", "problem_id"]).loc[keys, cols].to_numpy() for r in runs]
    )


def paired_differences(
    groups: dict[tuple[str, float | None], list[Run]],
    base: Run | None,
    *,
    baseline: str = BASELINE,
    ks: tuple[int, ...] = PAIRED_KS,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Long table (``PAIRED_COLUMNS``): one row per variant x lr x benchmark (and macro) x bucket
    (``all`` and, with a base run, BUCKETS) x k, for every (variant, lr) with a ``baseline`` group
    at the same lr. Problems are those every run of both groups (and the base) evaluated."""
    rows = []
    for (variant, lr), runs in groups.items():
        ref = groups.get((baseline, lr))
        if variant == baseline or ref is None:
            continue
        keys = None
        for r in [*runs, *ref, *([base] if base else [])]:
            idx = pd.MultiIndex.from_frame(r.problems[["benchmark", "problem_id"]])
            keys = idx if keys is None else keys.intersection(idx, sort=False)
        keys = keys.sort_values()
        bench = keys.get_level_values(0).to_numpy()
        benches = sorted(set(bench))
        cols = [f"pass@{k}" for k in ks]
        # a k is compared where every run has it on every benchmark (pass@16 needs n >= 16)
        tables = [r.problems for r in [*runs, *ref]]
        cols = [c for c in cols if all(c in t and t[c].notna().all() for t in tables)]
        if not cols or not len(keys):
            continue
        a, b = _stack(runs, keys, cols), _stack(ref, keys, cols)  # (S, P, M)
        buckets = {ALL: np.ones(len(keys), dtype=bool)}
        if base is not None:
            base_p1 = base.problems.set_index(["benchmark", "problem_id"]).loc[keys, "pass@1"].to_numpy()
            labels = difficulty_bucket(base_p1)
            buckets |= {name: labels == name for name, _, _ in BUCKETS}
        for bucket, sel in buckets.items():
            parts = [(bn, sel & (bench == bn)) for bn in benches] + [(MACRO, sel)]
            for bn, mask in parts:
                if not mask.any():
                    continue
                res = paired_bootstrap_diff(
                    a[:, mask], b[:, mask], strata=bench[mask], n_boot=n_boot,
                    seed=_subseed(seed, variant, lr, bn, bucket),
                )  # fmt: skip
                for j, c in enumerate(cols):
                    lo, hi = float(res["ci_low"][j]), float(res["ci_high"][j])
                    rows.append(
                        (group_label(variant, lr), variant, baseline, lr, bn, bucket, int(c.split("@")[1]),
                         float(res["diff"][j]), lo, hi, verdict(lo, hi), int(mask.sum()), len(runs), len(ref))
                    )  # fmt: skip
    return pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))


def _diff_cell(diff: float, lo: float, hi: float, word: str) -> str:
    mark = {"better": " ▲", "worse": " ▼"}.get(word, "")
    return f"{diff:+.3f} [{lo:+.3f}, {hi:+.3f}]{mark}"


def paired_markdown(paired: pd.DataFrame, *, benchmark: str | None = None, buckets: bool = True) -> str:
    """Markdown: per benchmark (macro last; or only ``benchmark``), a table of the differences
    over all problems with a verdict column per k, then (``buckets``) the same by difficulty."""
    if paired.empty:
        return "_no variant shares a learning rate with the baseline_\n"
    baseline = paired["baseline"].iloc[0]
    parts = [
        f"Cells: variant - {baseline} at the same lr, seed-averaged, [95% paired bootstrap CI over "
        "problems and seeds]; ▲ better / ▼ worse when the CI excludes 0, else no clear difference.\n"
    ]
    names = [b for b in paired["benchmark"].unique() if b != MACRO]
    order = [benchmark] if benchmark else sorted(names) + [MACRO]
    for bn in order:
        df = paired[paired["benchmark"] == bn]
        if df.empty:
            continue
        ks = sorted(df["k"].unique())
        overall = df[df["bucket"] == ALL]
        header = ["variant", "lr", "seeds", "problems"]
        header += [h for k in ks for h in (f"Δpass@{k}", f"verdict@{k}")]
        lines = [
            f"### {bn}: against {baseline}\n",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for (_, variant, lr), g in overall.groupby(["label", "variant", "lr"], sort=False):
            g = g.set_index("k")
            cells = [variant, f"{lr:g}", f"{g['seeds'].iloc[0]} vs {g['baseline_seeds'].iloc[0]}",
                     str(g["problems"].iloc[0])]  # fmt: skip
            for k in ks:
                r = g.loc[k]
                cells += [_diff_cell(r["diff"], r["ci_low"], r["ci_high"], r["verdict"]), r["verdict"]]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
        by = df[df["bucket"] != ALL]
        if buckets and not by.empty:
            names_b = [n for n, _, _ in BUCKETS if (by["bucket"] == n).any()]
            header = ["variant", "lr", "k"] + [f"base pass@1 in {n}" for n in names_b]
            lines = [f"By difficulty ({bn}; problems per bucket: "
                     + ", ".join(f"{n} {int(by.loc[by['bucket'] == n, 'problems'].iloc[0])}" for n in names_b)
                     + "):\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
            for (_, variant, lr, k), g in by.groupby(["label", "variant", "lr", "k"], sort=False):
                g = g.set_index("bucket")
                cells = [variant, f"{lr:g}", str(k)]
                for n in names_b:
                    r = g.loc[n] if n in g.index else None
                    cells.append(
                        "–" if r is None else _diff_cell(r["diff"], r["ci_low"], r["ci_high"], r["verdict"])
                    )
                lines.append("| " + " | ".join(cells) + " |")
            parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
