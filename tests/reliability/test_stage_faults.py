"""Each fault: the exit code, one line naming the problem, and the earlier outputs byte-identical.

The stages run as subprocesses in a copy of a micro-study repository (download and prepare
done, a base model, earlier train/evaluate/report outputs planted). None of these cases gets as far as Ray.
"""

from __future__ import annotations

import pytest
import yaml

from tests.reliability.conftest import run_stage, set_params, snapshot, stderr_lines


def _fails_cleanly(repo, args, expect: str, rc: int = 1, **env):
    before = snapshot(repo)
    proc = run_stage(repo, *args, **env)
    lines = stderr_lines(proc)
    assert proc.returncode == rc, proc.stderr[-2000:]
    assert len(lines) == 1 and expect in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "\x1b[" not in proc.stderr
    assert snapshot(repo) == before, "an earlier output was changed"
    return lines[0]


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_unreachable_cluster_address(stage_repo, stage):
    set_params(stage_repo, cluster__address="127.0.0.1:1", cluster__connect_timeout_s=2)
    _fails_cleanly(stage_repo, [f"stages/{stage}.py", "grpo"], "cannot reach the Ray cluster at 127.0.0.1:1")


def test_unreachable_ray_address_env(stage_repo):
    _fails_cleanly(stage_repo, ["stages/train.py", "grpo"], "cannot reach the Ray cluster at 127.0.0.1:1",
                   RAY_ADDRESS="127.0.0.1:1")


@pytest.mark.slow  # 5-13 s (subprocesses, a size-limited folder): out of the fast subset
def test_unroutable_address_fails_within_the_timeout_without_a_warning_flood(stage_repo):
    set_params(stage_repo, cluster__address="10.255.255.1:6379", cluster__connect_timeout_s=2)
    proc = run_stage(stage_repo, "stages/train.py", "grpo")
    lines = stderr_lines(proc)
    # refused by the TCP check, or (where a proxy accepts any connection) by Ray's own attach, in one line
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert "Ray cluster at 10.255.255.1:6379" in lines[0]
    assert "gcs_client" not in proc.stderr and len(proc.stderr.splitlines()) <= 3, proc.stderr[-2000:]


@pytest.mark.slow  # the stage imports torch to look for CUDA: seconds each, out of the fast subset
@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_backend_verl_on_a_cpu_machine(stage_repo, stage):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    set_params(stage_repo, backend="verl")
    _fails_cleanly(stage_repo, [f"stages/{stage}.py", "grpo"], "backend: verl needs GPUs")


def test_sft_under_backend_verl(stage_repo):
    set_params(stage_repo, backend="verl")
    _fails_cleanly(stage_repo, ["stages/sft.py"], "the sft stage belongs to backend: embedded")


def test_truncated_train_parquet(stage_repo):
    f = stage_repo / "data/prepared/multiply_train.parquet"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    line = _fails_cleanly(stage_repo, ["stages/train.py", "grpo"], "training data")
    assert "multiply_train.parquet is not readable parquet" in line and "prepare" in line


def test_truncated_benchmark_parquet(stage_repo):
    f = stage_repo / "data/prepared/multiply_test.parquet"
    f.write_bytes(f.read_bytes()[:100])
    _fails_cleanly(stage_repo, ["stages/evaluate.py", "grpo"], "benchmark multiply_test")


def test_empty_variants_keep_the_report_and_metrics(stage_repo):
    d = yaml.safe_load((stage_repo / "params.yaml").read_text())
    d["train"]["variants"] = {}
    (stage_repo / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    _fails_cleanly(stage_repo, ["stages/report.py"], "train.variants")


def test_evaluate_n_below_the_reports_k(stage_repo):
    set_params(stage_repo, evaluate__n=4, report__k_high=8)
    _fails_cleanly(stage_repo, ["stages/evaluate.py", "grpo"], "report.k_high=8 needs evaluate.n >= 8")


def test_a_nan_problem_is_refused_naming_the_row(stage_repo):
    bad = stage_repo / "bad.jsonl"
    bad.write_text('{"problem": "2+2?", "answer": "4"}\n{"problem": NaN, "answer": "1"}\n')
    d = yaml.safe_load((stage_repo / "params.yaml").read_text())
    d["data"]["train"] = [{"source": "local", "split": "train", "local": [str(bad)], "name": "bad"}]
    (stage_repo / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    line = _fails_cleanly(stage_repo, ["stages/prepare.py"], "row 1 of local: problem is nan (float)")
    assert "bad.jsonl" in line


def test_verbose_shows_the_traceback(stage_repo):
    set_params(stage_repo, cluster__address="127.0.0.1:1", cluster__connect_timeout_s=1)
    proc = run_stage(stage_repo, "stages/train.py", "grpo", "--verbose")
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert stderr_lines(proc)[-1].startswith("stage train: cannot reach")


@pytest.mark.slow  # 5-13 s (subprocesses, a size-limited folder): out of the fast subset
def test_failed_validation_names_the_first_expectations_without_ge_logging(stage_repo):
    set_params(stage_repo, data__max_prompt_length=2)  # the micro task's prompts ("7*8=") are longer
    proc = run_stage(stage_repo, "stages/validate.py")
    lines = stderr_lines(proc)
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert "failed expectation(s): multiply_train: prompt_length:" in lines[0] and "validation.json" in lines[0]
    assert "great_expectations" not in proc.stderr and len(proc.stderr.splitlines()) < 10


def test_offline_hub_fails_fast_naming_the_params_key(stage_repo):
    d = yaml.safe_load((stage_repo / "params.yaml").read_text())
    d["data"]["benchmarks"].append({"source": "math500", "split": "test"})
    (stage_repo / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    before = snapshot(stage_repo)
    proc = run_stage(stage_repo, "stages/download.py", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    lines = stderr_lines(proc)
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert "HuggingFaceH4/MATH-500" in lines[0] and "`local: [DIR/math500]`" in lines[0]
    assert len(proc.stderr.splitlines()) < 5 and snapshot(stage_repo) == before
