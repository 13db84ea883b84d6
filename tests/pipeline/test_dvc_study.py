"""`dvc repro` of a micro configuration: every stage, the no-op rerun, experiments and diffs."""

import json

import pandas as pd
import pytest
import yaml

from tests.pipeline.conftest import BIN, make_repo, micro_params, run

pytestmark = pytest.mark.slow
DVC = str(BIN / "dvc")


def variants(repo) -> list[str]:
    return list(yaml.safe_load((repo / "params.yaml").read_text())["train"]["variants"])


def test_repro_runs_every_stage(micro_repo):
    log = (micro_repo / "repro.log").read_text()
    names = variants(micro_repo)
    assert {"grpo", "rs_grpo_b2", "riskpo_track", "riskpo_batch"} <= set(names)
    stages = ["download", "prepare", "validate", "sft", "evaluate_base", "report", "bandit"]
    for stage in stages + [f"{s}@{v}" for v in names for s in ("train", "evaluate")]:
        assert f"Running stage '{stage}'" in log, stage
    # the data in verl's schema, validated
    assert (micro_repo / "data/prepared/multiply_train.parquet").is_file()
    assert json.loads((micro_repo / "data/validation/validation.json").read_text())["success"] is True
    # one run per grid cell, with the logs the report reads; the variant's own estimator and options
    for name in names:
        run_dir = micro_repo / "runs" / name / "lr0.01_s0"
        assert (run_dir / "model" / "config.json").is_file() and (run_dir / "train_metrics.csv").is_file()
        ev = micro_repo / "evals" / name / "lr0.01_s0"
        assert (ev / "metrics.json").is_file() and json.loads((ev / "run.json").read_text())["variant"] == name
    modes = {v: json.loads((micro_repo / "runs" / v / "lr0.01_s0" / "run.json").read_text())["algorithm"]
             for v in ("riskpo_track", "riskpo_batch")}
    assert modes["riskpo_track"]["riskpo"]["use_q_track_mode"] == "track"
    assert modes["riskpo_batch"]["riskpo"]["use_q_track_mode"] == "batch"
    # metrics, plots and the report, labelled by variant
    study = json.loads((micro_repo / "metrics/study.json").read_text())
    assert {f"{v}/lr0.01" for v in names} | {"base"} <= set(study)
    assert 0.0 <= study["riskpo_batch/lr0.01"]["multiply_test/pass@1"] <= 1.0
    report = (micro_repo / "reports/report.md").read_text()
    assert "riskpo_batch" in report and "rs_grpo_b2" in report and ".png" in report
    passk = pd.read_csv(micro_repo / "plots/passk.csv")
    assert list(passk.columns) == ["label", "variant", "lr", "k", "pass_at_k"]
    assert set(passk["variant"]) == set(names) and set(passk["k"]) == {1, 2, 4}
    assert (micro_repo / "outputs/bandit/bandit.json").is_file()


def test_dvc_plots_draw_one_nonempty_series_per_variant_and_lr(micro_repo):
    out = run([DVC, "plots", "show", "--json"], micro_repo).stdout
    shown = json.loads(out[out.index("{"):])
    shown = shown.get("data", shown)  # {"data": {<plot title>: [{"type", "revisions", "content"}]}}
    labels = {f"{v} lr=0.01" for v in variants(micro_repo)}
    for title, y in (("Pass@k", "pass_at_k"), ("Training reward", "reward_mean"), ("Policy entropy", "entropy")):
        plot = next(v for k, v in shown.items() if k.startswith(title))
        assert plot[0]["content"]["encoding"]["color"]["field"] == "label"
        points = plot[0]["content"]["data"]["values"]
        series: dict[str, int] = {}
        for pt in points:
            if pt.get(y) not in (None, ""):
                series[pt["label"]] = series.get(pt["label"], 0) + 1
        assert set(series) == labels, (title, series)
        assert all(n >= 3 for n in series.values()), (title, series)  # k = 1, 2, 4 or 3 steps each


def test_second_repro_does_nothing(micro_repo):
    out = run([DVC, "repro"], micro_repo).stdout
    assert "Data and pipelines are up to date." in out
    assert "Running stage" not in out


def test_experiment_reruns_only_the_changed_variant(micro_repo):
    out = run([DVC, "exp", "run", "-n", "beta4", "-S", "train.variants.rs_grpo_b2.beta=4"], micro_repo).stdout
    assert "Running stage 'train@rs_grpo_b2'" in out and "Running stage 'evaluate@rs_grpo_b2'" in out
    assert "Running stage 'report'" in out
    for other in set(variants(micro_repo)) - {"rs_grpo_b2"}:  # only what depends on train.variants.rs_grpo_b2
        assert f"Running stage 'train@{other}'" not in out and f"Running stage 'evaluate@{other}'" not in out
    show = run([DVC, "exp", "show", "--no-pager", "--md"], micro_repo).stdout
    assert "beta4" in show
    pdiff = run([DVC, "params", "diff", "HEAD", "beta4", "--md"], micro_repo).stdout
    row = next(line for line in pdiff.splitlines() if "train.variants.rs_grpo_b2.beta" in line)
    assert [c.strip() for c in row.strip("|").split("|")][2:4] == ["2.0", "4"]
    # --all: at 3 steps the two betas can sample the same answers, and an unchanged metric is not listed
    mdiff = run([DVC, "metrics", "diff", "HEAD", "beta4", "--all", "--md"], micro_repo)
    assert mdiff.returncode == 0 and "rs_grpo_b2/lr0.01" in mdiff.stdout
    plots = run([DVC, "plots", "diff", "HEAD", "beta4", "--json"], micro_repo)
    assert plots.returncode == 0 and "rs_grpo_b2 lr=0.01" in plots.stdout


def test_bad_params_stop_repro_with_one_line(tmp_path):
    params = micro_params()
    params["train"]["variants"]["riskpo_track"]["quantile_down"] = 0.95
    repo = make_repo(tmp_path, params)
    proc = run([DVC, "repro", "download"], repo, check=False)
    assert proc.returncode != 0
    assert "stage download: " in proc.stderr
    assert "train.variants.riskpo_track: quantile_down=0.95 must be < quantile_up=0.9" in proc.stderr
    assert not (repo / "data/raw").exists()
