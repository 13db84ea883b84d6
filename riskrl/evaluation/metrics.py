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

Comparisons of two policies on the same problems: ``paired_bootstrap_diff`` (the difference of
seed-averaged figures with a paired bootstrap CI over problems and seeds) and ``verdict``.
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
    out_problems: str | os.PathLike | None = None,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    maj_subsamples: int = 256,
) -> dict[str, dict]:
    """Compute metrics from a samples directory/file (or table); write the JSON, the long CSV and
    (``out_problems``) the per-problem table, so the report reads it instead of recomputing maj@k."""
    table = samples if isinstance(samples, pd.DataFrame) else read_samples(samples)
    problems = problem_table(table, maj_subsamples=maj_subsamples, seed=seed)
    metrics = summarize_problems(problems, n_boot=n_boot, alpha=alpha, seed=seed)
    write_json(out_metrics, metrics)
    if out_plots is not None:
        write_text(out_plots, metrics_long_table(metrics).to_csv(index=False))
    if out_problems is not None:
        write_problem_table(out_problems, problems, maj_subsamples=maj_subsamples, seed=seed)
    return metrics


PROBLEMS_FILE = "problems.parquet"
_PROBLEMS_KEY = b"riskrl.problem_table"


def write_problem_table(path: str | os.PathLike, problems: pd.DataFrame, *, maj_subsamples: int, seed: int) -> None:
    """The per-problem table as parquet, with the settings it was computed with in its metadata."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from riskrl.io import atomic_path

    t = pa.Table.from_pandas(problems, preserve_index=False)
    meta = {**(t.schema.metadata or {}), _PROBLEMS_KEY: json.dumps({"maj_subsamples": maj_subsamples, "seed": seed})}
    with atomic_path(path) as tmp:
        pq.write_table(t.replace_schema_metadata(meta), tmp)


def read_problem_table(path: str | os.PathLike, *, maj_subsamples: int, seed: int) -> pd.DataFrame | None:
    """The table ``write_problem_table`` wrote, or None when there is none, it is unreadable, or it
    was computed with other settings (then the caller recomputes it from the samples)."""
    import json

    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
        made = json.loads((t.schema.metadata or {}).get(_PROBLEMS_KEY, b"{}"))
    except (OSError, ValueError):
        return None
    if made != {"maj_subsamples": maj_subsamples, "seed": seed}:
        return None
    return t.to_pandas()


#: the verdict of a paired difference: its CI above 0, below 0, or containing 0.
VERDICTS = ("better", "worse", "no clear difference")


def verdict(ci_low: float, ci_high: float) -> str:
    """``better`` when the CI of (variant - baseline) excludes 0 from above, ``worse`` from below."""
    if ci_low > 0:
        return VERDICTS[0]
    if ci_high < 0:
        return VERDICTS[1]
    return VERDICTS[2]


def _resample_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) float counts of n draws with replacement from n items, one row per resample."""
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def paired_bootstrap_diff(
    a: np.ndarray,
    b: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Difference ``a - b`` of two policies' mean figures on the same problems, with a paired
    two-level bootstrap CI.

    ``a`` (S_a, P) or (S_a, P, M): per-problem figures (e.g. pass@1, pass@4, pass@16) of S_a seeds
    of the variant; ``b`` (S_b, P[, M]) of the baseline, problems in the same order. The figure of
    a policy is the mean over its seeds and over problems; with ``strata`` (P,) labels (e.g. the
    benchmark), the mean over strata of the within-stratum means (each benchmark weighs the same,
    as the macro figure).

    Each resample draws the problems with replacement (within each stratum), one draw shared by
    ``a`` and ``b`` (the pairing: a problem's difficulty cancels), and the seeds of each policy
    with replacement (independently: seed s of two variants are different training runs), so
    the CI covers both the benchmark's and the training's spread. Vectorised: resampling counts
    as weights, ``dist[r] = sum_s wa[r, s] (wp[r] @ a[s]) - sum_s wb[r, s] (wp[r] @ b[s])``.

    Returns ``{"diff": (M,), "ci_low": (M,), "ci_high": (M,), "dist": (n_boot, M)}`` (M dropped
    for 2-D input); the same ``seed`` gives the same numbers.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    flat = a.ndim == 2
    if flat and b.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.ndim != 3 or b.ndim != 3:
        raise ValueError(
            f"paired_bootstrap_diff: a and b must be (seeds, problems[, metrics]); got {a.shape}, {b.shape}"
        )
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"paired_bootstrap_diff: a and b must hold the same problems and metrics; got {a.shape} and {b.shape}"
        )
    (sa, p, m), sb = a.shape, b.shape[0]
    if min(sa, sb, p) < 1:
        raise ValueError(f"paired_bootstrap_diff: needs >= 1 seed and problem; got {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired_bootstrap_diff: a and b must be finite (a k above some problem's n?)")
    if not 0 < alpha < 1:
        raise ValueError(f"paired_bootstrap_diff: alpha must be in (0, 1); got {alpha}")
    codes = (
        np.zeros(p, dtype=np.int64)
        if strata is None
        else np.unique(np.asarray(strata), return_inverse=True)[1]
    )
    if codes.shape != (p,):
        raise ValueError(
            f"paired_bootstrap_diff: strata must have one label per problem ({p}); got {codes.shape}"
        )
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(codes == g) for g in range(int(codes.max()) + 1)]
    w0 = np.zeros(p)  # point weights: 1 / (size of the stratum x number of strata)
    wp = np.zeros((n_boot, p))  # (B, P) resampled problem weights, rows sum to 1
    for idx in members:
        w0[idx] = 1.0 / (len(idx) * len(members))
        wp[:, idx] = _resample_counts(rng, len(idx), n_boot) * w0[idx]
    wa = _resample_counts(rng, sa, n_boot) / sa  # (B, S_a)
    wb = _resample_counts(rng, sb, n_boot) / sb  # (B, S_b)
    ta = (wp @ a.transpose(1, 0, 2).reshape(p, sa * m)).reshape(n_boot, sa, m)  # (B, S_a, M)
    tb = (wp @ b.transpose(1, 0, 2).reshape(p, sb * m)).reshape(n_boot, sb, m)
    dist = np.einsum("rs,rsm->rm", wa, ta) - np.einsum("rs,rsm->rm", wb, tb)  # (B, M)
    diff = w0 @ (a.mean(0) - b.mean(0))  # (M,)
    lo, hi = percentile_ci(dist, alpha)
    out = {"diff": diff, "ci_low": lo, "ci_high": hi, "dist": dist}
    return {k: v[..., 0] for k, v in out.items()} if flat else out
