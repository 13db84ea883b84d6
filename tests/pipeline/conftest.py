"""A micro study in a temporary git repository: the real dvc.yaml, stages and code, tiny params."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def registered(estimator: str) -> bool:
    """Whether verl's registry (with riskrl's entries) knows ``estimator`` in this checkout."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    import riskrl.estimators.registry  # noqa: F401

    return estimator in ADV_ESTIMATOR_REGISTRY


def micro_params() -> dict:
    """The repository's params.yaml at a tiny scale, four of its variants."""
    d = yaml.safe_load((ROOT / "params.yaml").read_text())
    # GRPO, RS-GRPO and RiskPO in both modes; passk and pkpo run through the trainer's tests
    # (tests/embedded), and two more variants would add four stages to every micro study here
    keep = ("grpo", "rs_grpo_b2", "riskpo_track", "riskpo_batch")
    d["train"]["variants"] = {k: v for k, v in d["train"]["variants"].items()
                              if k in keep and registered(v["estimator"])}
    # 1-digit products: the tiny base gets some right (else every Pass@k is 0 and means prove nothing)
    d["task"].update(a_digits=1, b_digits=1, heldout_frac=0.2)
    d["data"]["train"][0]["n"] = 48  # the whole train split of that task
    d["data"]["benchmarks"][0]["n"] = 16
    d["model"].update(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64)
    d["sft"].update(steps=100, batch_size=16, lr=0.01, warmup_steps=1, num_threads=1, target_acc=0)
    d["train"].update(lrs=[1e-2], seeds=[0, 1], steps=3, prompts_per_step=10, n=3, save_every=2)
    d["cluster"].update(local_cpus=2)
    d["evaluate"].update(n=4, n_boot=100, batch_size=128)
    d["report"].update(k_high=4, n_boot=100)
    d["bandit"].update(updates=300, seeds=2)
    return d


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e['PATH']}"  # stage commands call `python`: this venv's
    e.update(PYTHONWARNINGS="ignore", RAY_USAGE_STATS_ENABLED="0", PREFECT_SERVER_ANALYTICS_ENABLED="false",
             TOKENIZERS_PARALLELISM="false", DVC_NO_ANALYTICS="1")
    e.pop("RAY_ADDRESS", None)
    return e


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def make_repo(dest: Path, params: dict) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        src = ROOT / f
        if src.is_file() and not f.startswith(("tests/", "benchmarks/", "docs/")):
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "micro study"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


@pytest.fixture(scope="session")
def micro_template(tmp_path_factory) -> Path:
    """A repository with a finished `dvc repro` of the micro study (2 seeds), its results
    committed. Read-only: tests that change anything take ``micro_repo``, a copy."""
    repo = make_repo(tmp_path_factory.mktemp("study"), micro_params())
    # 3-5 min; far more on a loaded machine, where a Ray head can miss its hard-coded 30 s
    # startup limit: DVC keeps the finished stages, so a second `dvc repro` only redoes the rest
    log = ""
    for attempt in range(3):
        proc = run([str(BIN / "dvc"), "repro"], repo, timeout=3600, check=attempt == 2)
        log += proc.stdout + proc.stderr
        if proc.returncode == 0:
            break
        assert "timed out during startup" in proc.stderr, proc.stderr[-5000:]
    (repo / "repro.log").write_text(log)
    for cmd in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro"]):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True)
    return repo


@pytest.fixture
def micro_repo(micro_template, tmp_path) -> Path:
    """A private copy of the finished micro study (git history and DVC cache included), so no
    test sees another's changes whatever the order."""
    repo = tmp_path / "study"
    shutil.copytree(micro_template, repo, symlinks=True)
    return repo
