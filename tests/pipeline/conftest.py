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


def micro_params() -> dict:
    d = yaml.safe_load((ROOT / "params.yaml").read_text())
    d["data"]["train"][0]["n"] = 256
    d["data"]["benchmarks"][0]["n"] = 24
    d["model"].update(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=64)
    d["sft"].update(steps=4, batch_size=16, warmup_steps=1, num_threads=1, target_acc=0)
    d["train"].update(lrs=[1e-3], seeds=[0], steps=3, prompts_per_step=10, n=3, save_every=2)
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
def micro_repo(tmp_path_factory) -> Path:
    """A repository with a finished `dvc repro` of the micro study."""
    repo = make_repo(tmp_path_factory.mktemp("study"), micro_params())
    proc = run([str(BIN / "dvc"), "repro"], repo)
    (repo / "repro.log").write_text(proc.stdout + proc.stderr)
    return repo
