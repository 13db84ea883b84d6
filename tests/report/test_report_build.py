"""The report from fixture runs: every table row and plot exists, numbers match an independent count."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from report_fixtures import BENCHMARKS, LRS, SEEDS, VARIANTS

from riskrl.report import publish_prefect_artifact, read_training_log
from riskrl.report.__main__ import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def independent_passk(samples: pd.DataFrame, bench: str, k: int) -> float:
    """Mean over problems of 1 - C(n-c,k)/C(n,k) with exact integer binomials."""
    counts = samples[samples["benchmark"] == bench].groupby("problem_id")["score"].agg(["size", "sum"])
    return float(
        np.mean([1 - math.comb(int(n) - int(c), k) / math.comb(int(n), k) for n, c in counts.to_numpy()])
    )


def table_rows(markdown: str, section: str) -> dict[str, list[str]]:
    """Rows of the Markdown table under '### section', keyed by their first cell."""
    body = markdown.split(f"### {section}\n", 1)[1].split("\n\n", 1)[0]
    lines = [line for line in body.strip().splitlines() if line.startswith("|")][2:]
    return {
        cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)
    }


def group_labels() -> list[str]:
    return ["base"] + [f"{v} lr={lr:g}" for v in VARIANTS for lr in LRS]


def test_passk_table_has_every_row_and_independent_numbers(report, fixture_runs):
    md, samples = report.markdown, fixture_runs["samples"]
    macro_n = min(n for _, n in BENCHMARKS.values())
    for bench in [*BENCHMARKS, "macro"]:
        rows = table_rows(md, bench)
        assert list(rows) == group_labels()
        n = macro_n if bench == "macro" else BENCHMARKS[bench][1]
        ks = [k for k in (1, 2, 4, 8, 16) if k <= n]
        header = md.split(f"### {bench}\n", 1)[1].splitlines()[1]
        assert header == "| run | seeds | " + " | ".join(f"pass@{k}" for k in ks) + f" | maj@{n} |"
        for label in group_labels():
            names = ["base"] if label == "base" else [
                name for name, m in fixture_runs["meta"].items() if f"{m.get('variant', m['estimator'])} lr={m['lr']:g}" == label
            ]  # fmt: skip
            assert rows[label][0] == str(len(names))
            for j, k in enumerate(ks):
                benches = list(BENCHMARKS) if bench == "macro" else [bench]
                per_seed = [np.mean([independent_passk(samples[nm], b, k) for b in benches]) for nm in names]
                want = float(np.mean(per_seed))
                got = report.summary.query(
                    "label == @label and benchmark == @bench and metric == 'pass@k' and k == @k"
                )
                assert len(got) == 1
                assert got["mean"].iloc[0] == pytest.approx(want, abs=2e-6)
                cell = rows[label][1 + j]
                assert cell.startswith(f"{want:.3f}")
                if len(names) > 1:
                    assert got["sd"].iloc[0] == pytest.approx(np.std(per_seed, ddof=1), abs=2e-6)
                    assert f"± {np.std(per_seed, ddof=1):.3f}" in cell
                lo, hi = (float(x) for x in re.search(r"\[([\d.]+), ([\d.]+)\]", cell).groups())
                assert lo <= want + 1e-3 and want - 1e-3 <= hi


def test_lost_and_gained_match_an_independent_count(report, fixture_runs):
    samples = fixture_runs["samples"]
    solved = {name: df.groupby(["benchmark", "problem_id"])["score"].max() for name, df in samples.items()}
    changes = report.changes.set_index(["run", "benchmark"])
    assert len(changes) == len(fixture_runs["meta"]) * len(BENCHMARKS)
    for name in fixture_runs["meta"]:
        for bench in BENCHMARKS:
            base, run = solved["base"][bench], solved[name][bench]
            lost = sorted(base.index[(base > 0) & (run == 0)], key=int)
            gained = sorted(base.index[(base == 0) & (run > 0)], key=int)
            row = changes.loc[(name, bench)]
            assert (row["lost"], row["gained"], row["lost_ids"], row["gained_ids"]) == (
                len(lost), len(gained), lost, gained
            )  # fmt: skip
            assert re.search(
                rf"^\| {re.escape(name)} \| {bench} \| \d+ \| {len(lost)} \| {len(gained)} \|",
                report.markdown,
                re.M,
            )
    assert sum(report.changes["lost"]) + sum(report.changes["gained"]) > 0  # the fixture exercises both


def test_every_plot_exists_is_a_png_and_is_linked(report):
    out = report.path.parent
    want = {f"passk_{b}.png" for b in [*BENCHMARKS, "macro"]} | {
        f"lr_{b}.png" for b in [*BENCHMARKS, "macro"]
    }
    want |= {"training.png", "quantiles.png"}
    assert {p.name for p in report.figures} == want
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.markdown))
    assert linked == want  # relative links, every figure embedded
    for name in want:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC
        img = imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temp files left
    assert (out / "report.md").read_text() == report.markdown


def test_runs_table_and_csvs(report, fixture_runs):
    for name, m in fixture_runs["meta"].items():
        assert re.search(
            rf"^\| {re.escape(name)} \| {m.get('variant', m['estimator'])} \| {m['estimator']} \| {m['lr']:g} "
            rf"\| {m['seed']} \|",
            report.markdown,
            re.M,
        )
    summary = pd.read_csv(report.path.parent / "passk_summary.csv")
    assert len(summary) == len(report.summary)
    assert set(summary["label"]) == set(group_labels())
    lost = pd.read_csv(report.path.parent / "lost_gained.csv")
    assert len(lost) == len(fixture_runs["meta"]) * len(BENCHMARKS)


def test_training_logs_csv_and_verl_jsonl(fixture_runs):
    grid = fixture_runs["grid"]
    csv = read_training_log(grid / f"riskpo_track-lr{LRS[0]:g}-s{SEEDS[0]}" / "train_metrics.csv")
    jsonl = read_training_log(grid / f"rs_grpo-lr{LRS[0]:g}-s{SEEDS[0]}" / "train_metrics.jsonl")
    assert {"step", "reward_mean", "entropy", "riskpo/a", "riskpo/b"} <= set(csv.columns)
    assert {"step", "reward_mean", "entropy"} <= set(jsonl.columns) and "riskpo/a" not in jsonl.columns
    assert csv["step"].tolist() == list(range(1, 21)) == jsonl["step"].tolist()


def test_cli_and_errors(fixture_runs, tmp_path, capsys):
    out = tmp_path / "rep"
    runs = [str(p) for p in sorted(fixture_runs["grid"].iterdir())[:2]]
    assert (
        main(["--runs", *runs, "--base", str(fixture_runs["base"]), "--out", str(out), "--n-boot", "100"])
        == 0
    )
    assert (out / "report.md").is_file() and (out / "training.png").is_file()
    assert "wrote" in capsys.readouterr().out

    broken = tmp_path / "broken"
    (broken / "samples").mkdir(parents=True)
    (broken / "metrics.json").write_text(json.dumps({}))
    assert main(["--runs", str(broken), "--out", str(tmp_path / "x")]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"error: run '{broken}' has no run.json (needs variant or estimator, lr, seed, name)"
    )
    assert main(["--runs", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_artifact_is_a_noop_outside_a_flow(report):
    assert publish_prefect_artifact(report) is None
    with pytest.raises(ValueError, match="lowercase letters, digits and dashes; got 'Bad_Key'"):
        publish_prefect_artifact(report, key="Bad_Key")


def test_load_run_reads_the_problem_table_the_evaluate_stage_wrote(tmp_path):
    from report_fixtures import synthetic_samples, write_run

    from riskrl.evaluation.metrics import (
        PROBLEMS_FILE,
        read_problem_table,
        write_metrics,
        write_problem_table,
    )
    from riskrl.report import load_run

    run = tmp_path / "run"
    write_run(run, synthetic_samples(np.random.default_rng(0), 0.5), {"variant": "grpo", "lr": 1e-6, "seed": 0},
              None, "csv")
    computed = load_run(run).problems  # no problems.parquet: computed from the samples
    write_metrics(run / "samples", tmp_path / "m.json", None, run / PROBLEMS_FILE, n_boot=10)
    pd.testing.assert_frame_equal(read_problem_table(run / PROBLEMS_FILE, maj_subsamples=256, seed=0), computed)
    assert read_problem_table(run / PROBLEMS_FILE, maj_subsamples=256, seed=1) is None  # other maj@k draws
    assert read_problem_table(run / PROBLEMS_FILE, maj_subsamples=64, seed=0) is None
    assert read_problem_table(tmp_path / "missing.parquet", maj_subsamples=256, seed=0) is None
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    assert read_problem_table(tmp_path / "bad.parquet", maj_subsamples=256, seed=0) is None
    # the report takes the stage's table when its settings match (a marked copy shows which), else recomputes
    write_problem_table(run / PROBLEMS_FILE, computed.assign(c=computed["c"] + 100), maj_subsamples=256, seed=0)
    assert (load_run(run).problems["c"] == computed["c"] + 100).all()
    again = load_run(run, seed=1).problems
    assert (again["c"] == computed["c"]).all() and again["maj@2"].notna().all()
