"""Metrics JSON / long CSV content, the samples-table schema, and the metrics CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskrl.evaluation import compute_metrics, metrics_long_table, problem_table, validate_samples
from riskrl.evaluation.__main__ import main
from riskrl.evaluation.schema import SAMPLES_COLUMNS, empty_samples, read_samples


def table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(SAMPLES_COLUMNS)).astype({"score": float})


def hand_samples() -> pd.DataFrame:
    """Benchmark a: 2 problems x 4 samples (c = 1 and 4); benchmark b: 3 problems x 2 samples."""
    rows = []
    a = {0: [("5", 1), ("6", 0), ("6", 0), ("", 0)], 1: [("9", 1)] * 4}
    for pid, samples in a.items():
        rows += [("a", pid, j, f"r{j}", p, s, 10 + j) for j, (p, s) in enumerate(samples)]
    b = {"x": [("1", 1), ("1", 1)], "y": [("2", 0), ("3", 1)], "z": [("", 0), ("", 0)]}
    for pid, samples in b.items():
        rows += [("b", pid, j, "r", p, s, 20) for j, (p, s) in enumerate(samples)]
    return table(rows)


def test_metrics_values_on_a_hand_computed_table():
    m = compute_metrics(hand_samples(), n_boot=300)
    a, b, macro = m["a"], m["b"], m["macro"]
    assert (a["n"], a["num_problems"], a["num_samples"]) == (4, 2, 8)
    assert a["pass@1"] == pytest.approx((0.25 + 1.0) / 2)
    assert a["pass@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert a["pass@4"] == pytest.approx(1.0)
    assert a["avg@4"] == a["pass@1"] and a["avg@4_ci"] == a["pass@1_ci"]
    assert a["maj@4"] == pytest.approx((0.0 + 1.0) / 2)  # "6" wins problem 0
    assert a["distinct_answers"] == pytest.approx((2 + 1) / 2)
    assert a["parsed_frac"] == pytest.approx(7 / 8)
    assert a["mean_response_tokens"] == pytest.approx(11.5)
    assert b["pass@1"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert b["pass@2"] == pytest.approx((1 + 1 + 0) / 3)
    assert b["maj@2"] == pytest.approx((1 + 0.5 + 0) / 3)  # tie "2"/"3" splits
    assert b["answer_entropy"] == pytest.approx((0 + 1 + 0) / 3)
    assert "pass@4" not in b and "pass@4" not in macro  # macro only over k every benchmark has
    assert macro["num_benchmarks"] == 2
    for key in ("pass@1", "pass@2", "maj@1", "maj@2", "distinct_answers"):
        assert macro[key] == pytest.approx((a[key] + b[key]) / 2, abs=1e-6)
    for entry in (a, b, macro):
        for key, value in entry.items():
            if f"{key}_ci" in entry:
                lo, hi = entry[f"{key}_ci"]
                assert lo - 1e-9 <= value <= hi + 1e-9, key
    assert json.loads(json.dumps(m)) == m


def test_problem_table_rows_and_mixed_problem_ids():
    df = hand_samples()
    df.loc[df["benchmark"] == "a", "problem_id"] = df.loc[df["benchmark"] == "a", "problem_id"].astype(int)
    pt = problem_table(df)
    assert list(pt[["benchmark", "problem_id"]].itertuples(index=False, name=None)) == [
        ("a", "0"), ("a", "1"), ("b", "x"), ("b", "y"), ("b", "z"),
    ]  # fmt: skip
    assert pt["c"].tolist() == [1, 4, 2, 1, 0]
    assert np.isnan(pt.loc[pt["benchmark"] == "b", "pass@4"]).all()


def test_metrics_are_reproducible_and_seeded():
    df = hand_samples()
    assert compute_metrics(df, n_boot=200, seed=1) == compute_metrics(
        df.sample(frac=1, random_state=0), n_boot=200, seed=1
    )


def test_long_table_content():
    m = compute_metrics(hand_samples(), n_boot=200)
    long = metrics_long_table(m)
    assert list(long.columns) == ["benchmark", "k", "metric", "value", "ci_low", "ci_high"]
    got = {(r.benchmark, r.k, r.metric) for r in long.itertuples()}
    want = {("a", k, f"{x}@k") for k in (1, 2, 4) for x in ("pass", "maj")}
    want |= {(bench, k, f"{x}@k") for bench in ("b", "macro") for k in (1, 2) for x in ("pass", "maj")}
    assert got == want
    row = long[(long["benchmark"] == "a") & (long["k"] == 2) & (long["metric"] == "pass@k")].iloc[0]
    assert (row["value"], [row["ci_low"], row["ci_high"]]) == (m["a"]["pass@2"], m["a"]["pass@2_ci"])


def test_schema_validation_errors():
    good = hand_samples()
    with pytest.raises(ValueError, match=r"missing column\(s\) 'pred'"):
        validate_samples(good.drop(columns="pred"))
    with pytest.raises(ValueError, match="has no rows"):
        validate_samples(empty_samples())
    bad = good.copy()
    bad.loc[0, "score"] = 0.5
    with pytest.raises(ValueError, match=r"'score' must be 0 or 1; found 0.5 \(benchmark 'a', problem '0'\)"):
        validate_samples(bad)
    with pytest.raises(ValueError, match="duplicate sample .*sample_idx 0"):
        validate_samples(pd.concat([good, good.iloc[:1]]))
    bad = good.copy()
    bad["num_tokens"] = bad["num_tokens"].astype(object)
    bad.loc[2, "num_tokens"] = "many"
    with pytest.raises(ValueError, match="'num_tokens' must be numeric; found 'many'"):
        validate_samples(bad)
    bad = good.copy()
    bad.loc[1, "response"] = None
    with pytest.raises(ValueError, match=r"'response' has a missing value \(row 1\)"):
        validate_samples(bad)
    ok = good.copy()
    ok.loc[0, "pred"] = None  # an unparsed answer may come as null
    assert validate_samples(ok).loc[0, "pred"] == ""


def test_cli_metrics_writes_json_and_csv(tmp_path, capsys):
    samples = tmp_path / "samples"
    samples.mkdir()
    for bench, df in hand_samples().groupby("benchmark"):
        df.to_parquet(samples / f"{bench}.parquet", index=False)
    out_json, out_csv = tmp_path / "m" / "metrics.json", tmp_path / "m" / "passk.csv"
    argv = ["metrics", "--samples", str(samples), "--out-metrics", str(out_json), "--out-plots", str(out_csv)]
    assert main([*argv, "--n-boot", "200"]) == 0
    metrics = json.loads(out_json.read_text())
    assert metrics == compute_metrics(read_samples(samples), n_boot=200)
    long = pd.read_csv(out_csv)
    pd.testing.assert_frame_equal(long, metrics_long_table(metrics), check_dtype=False)
    assert sorted(p.name for p in out_json.parent.iterdir()) == ["metrics.json", "passk.csv"]  # no temp files
    assert "pass@1=" in capsys.readouterr().out

    assert main(["metrics", "--samples", str(tmp_path / "nope"), "--out-metrics", str(out_json)]) == 1
    assert capsys.readouterr().err.strip() == f"error: no samples: '{tmp_path / 'nope'}' does not exist"
