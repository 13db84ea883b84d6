"""Benchmark metrics from the samples table: DVC metrics JSON and a long table for DVC plots.

Per benchmark (and macro-averaged over benchmarks), every figure is a mean over problems of a
per-problem value, with a 95% percentile-bootstrap CI over problems (``passk.py``):

* ``pass@k`` for k in ``k_values(n)`` (unbiased estimator), ``avg@n`` (= pass@1),
* ``maj@k`` (majority vote over parsed answers; only when some answer was parsed),
* ``distinct_answers`` and ``answer_entropy`` (bits) over parsed answers, the diversity figures,
* ``parsed_frac`` (share of samples with a parsed answer) and ``mean_response_tokens``.

``n`` is the smallest number of samples per problem in the benchmark; each problem's pass@k uses
its own n. The macro figure averages the benchmarks' figures (each benchmark weighs the same);
its CI resamples problems within each benchmark. Only keys present in every benchmark are
macro-averaged.
"""

from __future__ import annotations

import os
import re
import zlib

import numpy as np
import pandas as pd

from riskrl.evaluation.passk import (
    answer_diversity,
    bootstrap_means,
    encode_answers,
    k_values,
    maj_at_k,
    pass_at_k,
    percentile_ci,
)
from riskrl.evaluation.schema import read_samples, validate_samples
from riskrl.io import write_json, write_text

MACRO = "macro"
KMETRIC = re.compile(r"^(pass|maj)@(\d+)$")
LONG_COLUMNS = ("benchmark", "k", "metric", "value", "ci_low", "ci_high")
_DIGITS = 6


def _subseed(seed: int, *parts: object) -> int:
    """A reproducible seed per (seed, benchmark, k...) so figures do not depend on evaluation order."""
    words = [seed] + [zlib.crc32(str(p).encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def problem_table(samples: pd.DataFrame, *, maj_subsamples: int = 256, seed: int = 0) -> pd.DataFrame:
    """Per-problem figures: one row per (benchmark, problem_id), columns ``n``, ``c``,
    ``pass@k``/``maj@k`` for the benchmark's k (NaN for k of other benchmarks), ``distinct_answers``,
    ``answer_entropy``, ``parsed_frac``, ``mean_response_tokens``. Row order: benchmark, problem_id.
    """
    samples = validate_samples(samples)
    frames = []
    for bench, df in samples.groupby("benchmark", sort=True):
        df = df.sort_values(["problem_id", "sample_idx"], kind="stable")
        sizes = df.groupby("problem_id", sort=False).size()
        ks = k_values(int(sizes.min()))
        do_maj = bool((df["pred"].str.strip() != "").any())
        for n, pids in sizes.groupby(sizes).groups.items():
            sub = df[df["problem_id"].isin(pids)]
            P, n = len(pids), int(n)
            correct = sub["score"].to_numpy().reshape(P, n)  # (P, n), rows in problem_id order
            ids, _ = encode_answers(sub["pred"].to_numpy(dtype=object).reshape(P, n))
            c = correct.sum(1).astype(np.int64)
            cols: dict[str, object] = {
                "benchmark": bench,
                "problem_id": sub["problem_id"].to_numpy()[::n],
                "n": np.full(P, n),
                "c": c,
            }
            passk = pass_at_k(np.full(P, n)[:, None], c[:, None], np.asarray(ks)[None, :])  # (P, K)
            for j, k in enumerate(ks):
                cols[f"pass@{k}"] = passk[:, j]
            if do_maj:
                for k in ks:
                    cols[f"maj@{k}"] = maj_at_k(
                        ids, correct, k, num_subsamples=maj_subsamples, seed=_subseed(seed, bench, n, k)
                    )
            cols["distinct_answers"], cols["answer_entropy"] = answer_diversity(ids)
            cols["parsed_frac"] = (ids >= 0).mean(1)
            cols["mean_response_tokens"] = sub["num_tokens"].to_numpy().reshape(P, n).mean(1)
            frames.append(pd.DataFrame(cols))
    out = pd.concat(frames, ignore_index=True)
    front = ["benchmark", "problem_id", "n", "c"]
    kcols = sorted(
        (c for c in out.columns if KMETRIC.match(c)), key=lambda c: (KMETRIC.match(c)[1] != "pass", _k(c))
    )
    rest = [c for c in out.columns if c not in front and c not in kcols]
    return out[front + kcols + rest].sort_values(["benchmark", "problem_id"], ignore_index=True)


def _k(key: str) -> int:
    return int(KMETRIC.match(key)[2])


def metric_columns(problems: pd.DataFrame) -> list[str]:
    """Columns of a problem table that are averaged into figures (all but the keys, n and c)."""
    return [c for c in problems.columns if c not in ("benchmark", "problem_id", "n", "c")]


def summarize_problems(
    problems: pd.DataFrame, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, dict]:
    """Metrics dict from a problem table (see ``compute_metrics``).

    Works on any table with per-problem values, e.g. the seed-average of several runs' tables.
    """
    out: dict[str, dict] = {}
    dists: dict[str, tuple[list[str], np.ndarray]] = {}
    for bench, df in problems.groupby("benchmark", sort=True):
        cols = [c for c in metric_columns(df) if df[c].notna().all()]
        vals = df[cols].to_numpy(dtype=np.float64)  # (P, M)
        dist = bootstrap_means(vals, n_boot=n_boot, seed=_subseed(seed, bench))  # (B, M)
        dists[bench] = (cols, dist)
        n = int(df["n"].min())
        entry: dict[str, object] = {"n": n, "num_problems": len(df), "num_samples": int(df["n"].sum())}
        entry.update(_figures(cols, vals.mean(0), dist, alpha))
        if "pass@1" in cols:  # avg@n: mean accuracy over the n samples, identical to pass@1
            entry[f"avg@{n}"], entry[f"avg@{n}_ci"] = entry["pass@1"], entry["pass@1_ci"]
        out[bench] = entry
    if out:
        common = [c for c in next(iter(dists.values()))[0] if all(c in cs for cs, _ in dists.values())]
        point = np.mean([[out[b][c] for c in common] for b in dists], axis=0)
        dist = np.mean([d[:, [cs.index(c) for c in common]] for cs, d in dists.values()], axis=0)
        macro: dict[str, object] = {"num_benchmarks": len(dists)}
        macro.update(_figures(common, point, dist, alpha))
        out[MACRO] = macro
    return out


def _figures(cols: list[str], point: np.ndarray, dist: np.ndarray, alpha: float) -> dict[str, object]:
    lo, hi = percentile_ci(dist, alpha)
    fig: dict[str, object] = {}
    for j, c in enumerate(cols):
        fig[c] = round(float(point[j]), _DIGITS)
        fig[f"{c}_ci"] = [round(float(lo[j]), _DIGITS), round(float(hi[j]), _DIGITS)]
    return fig


def compute_metrics(
    samples: pd.DataFrame,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    maj_subsamples: int = 256,
) -> dict[str, dict]:
    """Nested metrics dict ``{benchmark: {"pass@1": .., "pass@1_ci": [lo, hi], .., "maj@k": ..,
    "distinct_answers": ..}, "macro": {..}}`` from a samples table (schema in ``schema.py``)."""
    problems = problem_table(samples, maj_subsamples=maj_subsamples, seed=seed)
    return summarize_problems(problems, n_boot=n_boot, alpha=alpha, seed=seed)


def metrics_long_table(metrics: dict[str, dict]) -> pd.DataFrame:
    """Long format for DVC plots: one row per (benchmark, k, metric) with metric in pass@k, maj@k."""
    rows = []
    for bench, entry in metrics.items():
        for key, value in entry.items():
            m = KMETRIC.match(key)
            if m:
                lo, hi = entry.get(f"{key}_ci", [np.nan, np.nan])
                rows.append((bench, int(m[2]), f"{m[1]}@k", value, lo, hi))
    df = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    return df.sort_values(["benchmark", "metric", "k"], ignore_index=True)


def write_metrics(
    samples: str | os.PathLike | pd.DataFrame,
    out_metrics: str | os.PathLike,
    out_plots: str | os.PathLike | None = None,
    **kwargs,
) -> dict[str, dict]:
    """Compute metrics from a samples directory/file (or table); write the JSON and the long CSV."""
    table = samples if isinstance(samples, pd.DataFrame) else read_samples(samples)
    metrics = compute_metrics(table, **kwargs)
    write_json(out_metrics, metrics)
    if out_plots is not None:
        write_text(out_plots, metrics_long_table(metrics).to_csv(index=False))
    return metrics
