"""`dvc repro` killed during training resumes; reruns with unchanged inputs change nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline.conftest import BIN, make_repo, micro_params, run
from tests.reliability.conftest import env, snapshot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
DVC = str(BIN / "dvc")
RUN = Path("runs/grpo/lr0.01_s0")
STEPS = 40


def _params() -> dict:
    d = micro_params()
    # one run (seed 0): with two, train@grpo outlives run s0 and the kill can land after its last step
    d["train"].update(steps=STEPS, seeds=[0], save_every=2, keep_checkpoints=0)
    return d


def test_prepare_rerun_leaves_dvc_status_clean_and_stages_are_deterministic(tmp_path):
    repo = make_repo(tmp_path, _params())
    run([DVC, "repro", "validate"], repo)  # download, prepare, validate (sft and later: the next test)
    for stage, outs in (("download", ["data/raw"]), ("prepare", ["data/prepared"]),
                        ("validate", ["data/validation"])):
        before = snapshot(repo, outs)
        run([DVC, "repro", "-f", "-s", stage], repo)
        after = snapshot(repo, outs)
        ignored = ("data/validation/results", "data/validation/data_docs")  # .dvcignore: timestamps, not hashed
        assert {k: v for k, v in after.items() if not k.startswith(ignored)} == \
               {k: v for k, v in before.items() if not k.startswith(ignored)}, stage
    status = run([DVC, "status", "validate"], repo).stdout
    assert "Data and pipelines are up to date." in status, status
    summary = json.loads((repo / "data/prepared/multiply_train.summary.json").read_text())
    assert summary["output"] == "multiply_train.parquet"


def _newest_step(repo: Path) -> int:
    ckpts = repo / RUN / "checkpoints"
    steps = [int(p.name.split("_")[1]) for p in ckpts.glob("step_*")] if ckpts.is_dir() else []
    return max(steps, default=0)


def test_killed_repro_resumes_and_ends_like_an_uninterrupted_run(tmp_path):
    repo = make_repo(tmp_path / "a", _params())
    run([DVC, "repro", "sft"], repo)
    proc = subprocess.Popen([DVC, "repro", "train@grpo"], cwd=repo, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while _newest_step(repo) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "train@grpo finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: dvc, the stage, the local Ray head
    proc.wait()
    killed_at = _newest_step(repo)
    assert 6 <= killed_at < STEPS
    time.sleep(3)  # Ray alone notices a dead raylet after ~2 s; the worker dies with it (die_with_parent)
    assert _newest_step(repo) == killed_at, "the Ray worker kept training after its stage was killed"

    out = run([DVC, "repro", "train@grpo"], repo)
    timing = json.loads((repo / RUN / "run_timing.json").read_text())
    assert timing["resumed_from_step"] >= killed_at, (timing, out.stdout[-2000:])
    resumed_metrics = (repo / RUN / "train_metrics.csv").read_text()
    resumed_model = (repo / RUN / "model/model.safetensors").read_bytes()
    recomputed = STEPS - timing["resumed_from_step"]

    # an uninterrupted run of the same stage, from scratch
    subprocess.run(["rm", "-rf", str(repo / "runs/grpo")], check=True)
    run([DVC, "repro", "-f", "-s", "train@grpo"], repo)
    full = json.loads((repo / RUN / "run_timing.json").read_text())
    assert full["resumed_from_step"] == 0
    assert (repo / RUN / "train_metrics.csv").read_text() == resumed_metrics
    assert (repo / RUN / "model/model.safetensors").read_bytes() == resumed_model
    assert recomputed < STEPS and len(pd.read_csv(repo / RUN / "train_metrics.csv")) == STEPS
    print(f"killed at step {killed_at}/{STEPS}; resumed from {timing['resumed_from_step']}, "
          f"recomputed {recomputed} steps; resumed run == uninterrupted run")

    # rerunning train and evaluate with unchanged inputs changes no hashed byte
    before = snapshot(repo, ["runs/grpo"])
    run([DVC, "repro", "-f", "-s", "train@grpo"], repo)
    hashed = lambda s: {k: v for k, v in s.items() if "tensorboard" not in k and "timing" not in k}  # noqa: E731
    assert hashed(snapshot(repo, ["runs/grpo"])) == hashed(before)
    run([DVC, "repro", "evaluate@grpo"], repo)
    before = snapshot(repo, ["evals/grpo", "metrics/evaluate_grpo.json"])
    run([DVC, "repro", "-f", "-s", "evaluate@grpo"], repo)
    assert snapshot(repo, ["evals/grpo", "metrics/evaluate_grpo.json"]) == before
    assert "Data and pipelines are up to date." in run([DVC, "status", "evaluate@grpo"], repo).stdout
