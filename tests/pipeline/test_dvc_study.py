"""`dvc repro` of a micro configuration: every stage, the no-op rerun, experiments and diffs."""

import json

import pytest

from tests.pipeline.conftest import BIN, make_repo, micro_params, run

pytestmark = pytest.mark.slow
DVC = str(BIN / "dvc")


def test_repro_runs_every_stage(micro_repo):
    log = (micro_repo / "repro.log").read_text()
    for stage in ("download", "prepare", "validate", "sft", "train@grpo", "train@rs_grpo", "train@riskpo",
                  "evaluate@grpo", "evaluate@rs_grpo", "evaluate@riskpo", "evaluate_base", "report", "bandit"):
        assert f"Running stage '{stage}'" in log, stage
    # the data in verl's schema, validated
    assert (micro_repo / "data/prepared/multiply_train.parquet").is_file()
    assert json.loads((micro_repo / "data/validation/validation.json").read_text())["success"] is True
    # one run per grid cell, with the logs the report reads
    for est in ("grpo", "rs_grpo", "riskpo"):
        run_dir = micro_repo / "runs" / est / "lr0.001_s0"
        assert (run_dir / "model" / "config.json").is_file() and (run_dir / "train_metrics.csv").is_file()
        assert (micro_repo / "evals" / est / "lr0.001_s0" / "metrics.json").is_file()
    # metrics, plots and the report
    study = json.loads((micro_repo / "metrics/study.json").read_text())
    assert {"grpo/lr0.001", "rs_grpo/lr0.001", "riskpo/lr0.001", "base"} <= set(study)
    assert 0.0 <= study["riskpo/lr0.001"]["multiply_test/pass@1"] <= 1.0
    report = (micro_repo / "reports/report.md").read_text()
    assert "riskpo" in report and ".png" in report
    assert (micro_repo / "plots/passk.csv").read_text().startswith("k,")
    assert (micro_repo / "outputs/bandit/bandit.json").is_file()


def test_second_repro_does_nothing(micro_repo):
    out = run([DVC, "repro"], micro_repo).stdout
    assert "Data and pipelines are up to date." in out
    assert "Running stage" not in out


def test_experiment_with_changed_riskpo_option(micro_repo):
    out = run([DVC, "exp", "run", "-n", "bundle3", "-S", "train.riskpo.bundle_size=3"], micro_repo).stdout
    assert "Running stage 'train@riskpo'" in out and "Running stage 'evaluate@riskpo'" in out
    assert "Running stage 'train@grpo'" not in out  # only what depends on train.riskpo reruns
    show = run([DVC, "exp", "show", "--no-pager", "--md"], micro_repo).stdout
    assert "bundle3" in show
    pdiff = run([DVC, "params", "diff", "HEAD", "bundle3", "--md"], micro_repo).stdout
    row = next(line for line in pdiff.splitlines() if "train.riskpo.bundle_size" in line)
    assert [c.strip() for c in row.strip("|").split("|")][2:4] == ["5", "3"]
    mdiff = run([DVC, "metrics", "diff", "HEAD", "bundle3", "--md"], micro_repo)
    assert mdiff.returncode == 0 and "metrics/" in mdiff.stdout
    plots = run([DVC, "plots", "diff", "HEAD", "bundle3", "--json"], micro_repo)
    assert plots.returncode == 0 and "passk" in plots.stdout


def test_bad_params_stop_repro_with_one_line(tmp_path):
    params = micro_params()
    params["train"]["riskpo"]["quantile_down"] = 0.95
    repo = make_repo(tmp_path, params)
    proc = run([DVC, "repro", "download"], repo, check=False)
    assert proc.returncode != 0
    assert "stage download: " in proc.stderr and "quantile_down=0.95 must be < quantile_up=0.9" in proc.stderr
    assert not (repo / "data/raw").exists()
