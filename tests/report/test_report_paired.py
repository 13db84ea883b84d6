"""Paired differences in the report: every row, numbers from an independent count, buckets, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from report_fixtures import BENCHMARKS, LRS, SEEDS, VARIANTS, synthetic_samples, write_run

from riskrl.report import build_report, paired_differences
from riskrl.report.paired import BUCKETS, PAIRED_COLUMNS
from riskrl.report.runs import group_runs, load_run


def per_problem_passk(samples: pd.DataFrame, k: int) -> pd.Series:
    """Unbiased pass@k per (benchmark, problem_id) with exact integer binomials."""
    g = samples.groupby(["benchmark", "problem_id"])["score"].agg(["size", "sum"])
    return pd.Series(
        [1 - math.comb(int(n) - int(c), k) / math.comb(int(n), k) for n, c in g.to_numpy()], index=g.index
    )


def bucket_of(p1: float) -> str:
    return next(name for name, lo, hi in BUCKETS if lo <= p1 < hi)


def test_every_variant_lr_benchmark_bucket_and_k_has_a_row(report):
    paired = report.paired
    assert list(paired.columns) == list(PAIRED_COLUMNS)
    assert set(paired["variant"]) == set(VARIANTS) - {"grpo"} and set(paired["baseline"]) == {"grpo"}
    assert set(paired["lr"]) == set(LRS)
    overall = paired[paired["bucket"] == "all"]
    for bench in [*BENCHMARKS, "macro"]:
        n = min(n for _, n in BENCHMARKS.values()) if bench == "macro" else BENCHMARKS[bench][1]
        ks = {k for k in (1, 4, 16) if k <= n}
        got = overall[overall["benchmark"] == bench]
        assert len(got) == (len(VARIANTS) - 1) * len(LRS) * len(ks)
        assert set(got["k"]) == ks
    assert (paired["seeds"] == len(SEEDS)).all() and (paired["baseline_seeds"] == len(SEEDS)).all()
    # verdict agrees with the CI, and the point lies in it
    for r in paired.itertuples():
        assert r.ci_low - 1e-9 <= r.diff <= r.ci_high + 1e-9
        want = "better" if r.ci_low > 0 else "worse" if r.ci_high < 0 else "no clear difference"
        assert r.verdict == want


def test_differences_and_buckets_match_an_independent_count(report, fixture_runs):
    samples, meta = fixture_runs["samples"], fixture_runs["meta"]
    base_p1 = per_problem_passk(samples["base"], 1)
    buckets = base_p1.map(bucket_of)
    paired = report.paired.set_index(["variant", "lr", "benchmark", "bucket", "k"])
    for variant in set(VARIANTS) - {"grpo"}:
        for lr in LRS:
            for k in (1, 4):
                mine = [
                    n
                    for n, m in meta.items()
                    if m.get("variant", m["estimator"]) == variant and m["lr"] == lr
                ]
                ref = [n for n, m in meta.items() if m["estimator"] == "grpo" and m["lr"] == lr]
                d = np.mean([per_problem_passk(samples[n], k) for n in mine], 0) - np.mean(
                    [per_problem_passk(samples[n], k) for n in ref], 0
                )  # per problem, seeds averaged
                d = pd.Series(d, index=base_p1.index)
                for bench in BENCHMARKS:
                    row = paired.loc[(variant, lr, bench, "all", k)]
                    assert row["diff"] == pytest.approx(d[bench].mean(), abs=1e-9)
                    assert row["problems"] == BENCHMARKS[bench][0]
                    for name, _, _ in BUCKETS:
                        sel = d[bench][buckets[bench] == name]
                        key = (variant, lr, bench, name, k)
                        if len(sel) == 0:
                            assert key not in paired.index
                            continue
                        assert paired.loc[key, "diff"] == pytest.approx(sel.mean(), abs=1e-9)
                        assert paired.loc[key, "problems"] == len(sel)
                macro = np.mean([d[b].mean() for b in BENCHMARKS])  # each benchmark weighs the same
                assert paired.loc[(variant, lr, "macro", "all", k), "diff"] == pytest.approx(macro, abs=1e-9)


def test_markdown_and_csv(report):
    md = report.markdown
    assert "## Paired differences against grpo" in md and "### macro: against grpo" in md
    for r in report.paired[
        (report.paired["bucket"] == "all") & (report.paired["benchmark"] == "macro")
    ].itertuples():
        cell = f"{r.diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        assert f"| {r.variant} | {r.lr:g} | 2 vs 2 | 22 |" in md and cell in md
    assert "By difficulty (macro; problems per bucket:" in md
    csv = pd.read_csv(report.path.parent / "paired_diff.csv")
    assert len(csv) == len(report.paired)
    np.testing.assert_allclose(csv["diff"], report.paired["diff"])
    assert "![tracked quantiles](quantiles.png)" in md


def test_a_planted_difference_is_called_and_no_baseline_is_reported(tmp_path):
    rng = np.random.default_rng(5)
    for variant, skill in (("grpo", 0.2), ("strong", 0.75), ("same", 0.2)):
        for seed in (0, 1, 2):
            meta = {"variant": variant, "estimator": "grpo", "lr": 1e-4, "seed": seed}
            write_run(
                tmp_path / "runs" / f"{variant}-s{seed}", synthetic_samples(rng, skill), meta, None, "csv"
            )
    runs = [load_run(p) for p in sorted((tmp_path / "runs").iterdir())]
    paired = paired_differences(group_runs(runs), None, n_boot=500)
    paired = paired.set_index(["variant", "benchmark", "k"]).sort_index()
    assert set(paired.reset_index()["bucket"]) == {"all"}  # no base: no difficulty buckets
    strong = paired.loc["strong", "verdict"]
    assert (strong.xs(1, level="k") == "better").all() and (strong.loc["macro"] == "better").all()
    assert paired.loc[("strong", "macro", 1), "diff"] > 0.2
    assert paired.loc[("same", "macro", 1), "verdict"] == "no clear difference"
    assert paired_differences(group_runs(runs), None, baseline="missing").empty
    rep = build_report([tmp_path / "runs"], None, tmp_path / "rep", n_boot=100, baseline="missing")
    assert "_no variant shares a learning rate with the baseline `missing`_" in rep.markdown


def test_tracked_quantiles_plot_only_for_runs_that_tracked_them(fixture_runs, tmp_path):
    from matplotlib.image import imread

    from riskrl.report.plots import plot_quantiles, quantile_columns

    runs = [load_run(p) for p in sorted(fixture_runs["grid"].iterdir())]
    riskpo = [r for r in runs if r.estimator == "riskpo"]
    cols = quantile_columns(riskpo[0].train)
    assert [float(c.split("_")[1]) for c in cols] == pytest.approx([0.05 * i for i in range(1, 20)])
    assert all(quantile_columns(r.train) == [] for r in runs if r.estimator != "riskpo")
    assert plot_quantiles(group_runs([r for r in runs if r.estimator != "riskpo"]), tmp_path) is None
    path = plot_quantiles(group_runs(runs), tmp_path)
    assert path == tmp_path / "quantiles.png" and imread(path).shape[1] > 600  # two panels, one per lr
