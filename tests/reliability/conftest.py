"""Fixtures of the reliability suite: the tiny embedded policy, and a stage-ready repository copy."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.embedded.conftest import _one_thread, tiny_base, tiny_data, tiny_init  # noqa: F401  (fixtures)
from tests.pipeline.conftest import make_repo, micro_params

BIN = Path(sys.executable).parent
OUTPUT_DIRS = ("runs", "evals", "metrics", "plots", "reports", "outputs", "data/prepared", "models")


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e['PATH']}"
    e.update(PYTHONWARNINGS="ignore", RAY_USAGE_STATS_ENABLED="0", TOKENIZERS_PARALLELISM="false",
             DVC_NO_ANALYTICS="1")
    e.pop("RAY_ADDRESS", None)
    e.pop("RISKRL_DEBUG", None)
    e.pop("PYTHONPATH", None)
    e.update(extra)
    return e


def run_stage(repo: Path, *args: str, timeout: int = 600, **extra_env: str) -> subprocess.CompletedProcess:
    e = env(**extra_env)
    e.setdefault("PYTHONPATH", str(repo))  # the repository copy's code
    return subprocess.run([sys.executable, *args], cwd=repo, env=e, capture_output=True, text=True, timeout=timeout)


def snapshot(repo: Path, dirs=OUTPUT_DIRS) -> dict[str, str]:
    """sha256 of every file under the output folders (and of the folders' own listings)."""
    out = {}
    for d in dirs:
        if (repo / d).is_file():
            out[d] = hashlib.sha256((repo / d).read_bytes()).hexdigest()
            continue
        for f in sorted((repo / d).rglob("*")) if (repo / d).exists() else []:
            rel = str(f.relative_to(repo))
            out[rel] = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "dir"
    return out


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The stage's own lines (logging INFO lines and Ray's start-up chatter are not errors)."""
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("stage ")]


def set_params(repo: Path, **sections) -> None:
    d = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in sections.items():
        node = d
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))


@pytest.fixture(scope="session")
def stage_repo_template(tmp_path_factory) -> Path:
    """A micro-study repository after download and prepare (no Ray), a base model, and planted earlier
    outputs of train/evaluate/report that a failing stage must leave byte-identical.

    The base model is a freshly initialised one of the study's model config, made in this process:
    the sft stage's subprocess takes about 10 s, and no test here needs a trained policy (the sft
    stage itself runs in the pipeline tests and in test_dvc_resume.py)."""
    from riskrl.config import load_params
    from riskrl.embedded.model import init_model

    repo = make_repo(tmp_path_factory.mktemp("rel_repo"), micro_params())
    for stage in ("download", "prepare"):
        proc = run_stage(repo, f"stages/{stage}.py")
        assert proc.returncode == 0, proc.stderr[-3000:]
    init_model(load_params(repo / "params.yaml").model, repo / "models/base")
    for rel, text in {
        "runs/grpo/lr0.01_s0/run.json": '{"estimator": "grpo"}\n',
        "runs/grpo/lr0.01_s0/checkpoints/step_2/state.json": "{}\n",
        "evals/grpo/lr0.01_s0/metrics.json": '{"multiply_test": {"pass@1": 0.5}}\n',
        "metrics/evaluate_grpo.json": '{"runs": {}}\n',
        "metrics/study.json": '{"grpo/lr0.01": {}}\n',
        "plots/passk.csv": "k,grpo lr=0.001\n1,0.5\n",
        "reports/report.md": "# an earlier report\n",
    }.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    shutil.copytree(repo / "models/base", repo / "runs/grpo/lr0.01_s0/model")  # a "trained" run to evaluate
    return repo


@pytest.fixture
def stage_repo(stage_repo_template, tmp_path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(stage_repo_template, dest, symlinks=True)
    return dest
