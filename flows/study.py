"""Prefect flow over the DVC stages of the study: each task is one `dvc repro -s <stage>`, so
DVC's cache decides what reruns; Prefect adds retries, logs, the report as a Markdown
artifact and (flows/deploy.py) a cron schedule.

    python flows/study.py                    # run once, here
    python flows/study.py --set train.steps=50 --set train.lrs=[3e-5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger, task

ROOT = Path(__file__).resolve().parents[1]


class StageFailed(RuntimeError):
    """A DVC stage failed; the message is the stage's own one-line error."""


def _dvc() -> str:
    venv_dvc = Path(sys.executable).with_name("dvc")
    return str(venv_dvc) if venv_dvc.exists() else (shutil.which("dvc") or "dvc")


def repro(stage: str, repo: str) -> str:
    """`dvc repro -s <stage>` in ``repo``; DVC skips it when nothing it depends on changed."""
    logger = get_run_logger()
    # stage commands call `python`: make it this environment's, as an activated venv would
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([_dvc(), "repro", "-s", stage], cwd=repo, capture_output=True, text=True, env=env)
    out = (proc.stdout + proc.stderr).strip()
    for line in out.splitlines()[-20:]:
        logger.info(line)
    if proc.returncode:
        own = [ln for ln in out.splitlines() if ln.startswith(f"stage {stage.split('@')[0]}:")]
        errors = [ln for ln in out.splitlines() if ln.startswith("ERROR")]
        lines = own or errors
        raise StageFailed(lines[-1] if lines else f"dvc repro -s {stage} failed (exit {proc.returncode})")
    return "skipped" if "didn't change, skipping" in out else "ran"


@task(name="download", retries=3, retry_delay_seconds=[10, 60, 300], tags=["network"])
def download(repo: str) -> str:
    return repro("download", repo)


@task(name="prepare")
def prepare(repo: str) -> str:
    return repro("prepare", repo)


@task(name="validate")
def validate(repo: str) -> str:
    return repro("validate", repo)


@task(name="sft")
def sft(repo: str) -> str:
    return repro("sft", repo)


@task(name="train", retries=2, retry_delay_seconds=30, tags=["cluster"], task_run_name="train@{estimator}")
def train(repo: str, estimator: str) -> str:
    return repro(f"train@{estimator}", repo)


@task(name="evaluate", retries=2, retry_delay_seconds=30, tags=["cluster"], task_run_name="evaluate@{estimator}")
def evaluate(repo: str, estimator: str) -> str:
    return repro(f"evaluate@{estimator}", repo)


@task(name="evaluate_base", retries=2, retry_delay_seconds=30, tags=["cluster"])
def evaluate_base(repo: str) -> str:
    return repro("evaluate_base", repo)


@task(name="report")
def report(repo: str) -> str:
    from riskrl.report import publish_prefect_artifact

    state = repro("report", repo)
    md = Path(repo, "reports", "report.md").read_text()
    publish_prefect_artifact(md)
    return state


@task(name="bandit")
def bandit(repo: str) -> str:
    return repro("bandit", repo)


def apply_overrides(repo: str, overrides: list[str]) -> None:
    """``key.sub=value`` edits of params.yaml (values parsed as YAML), validated before writing,
    so a bad override stops the flow in one line and leaves params.yaml untouched."""
    from riskrl.config import load_params, set_overrides
    from riskrl.io import atomic_path

    path = Path(repo, "params.yaml")
    data = set_overrides(yaml.safe_load(path.read_text()), overrides)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        load_params(tmp)  # raises one line; atomic_path then discards tmp


@flow(name="riskrl-study", log_prints=True)
def study(repo: str = str(ROOT), overrides: list[str] | None = None, bandit_too: bool = True) -> dict[str, Any]:
    """download -> prepare -> validate -> (sft) -> train@e -> evaluate@e, evaluate_base -> report."""
    from riskrl.config import load_params

    if overrides:
        apply_overrides(repo, overrides)
    p = load_params(Path(repo, "params.yaml"))
    states = {"download": download(repo), "prepare": prepare(repo), "validate": validate(repo)}
    states["sft"] = sft(repo)
    for est in p.train.estimators:
        states[f"train@{est}"] = train(repo, est)
    for est in p.train.estimators:
        states[f"evaluate@{est}"] = evaluate(repo, est)
    states["evaluate_base"] = evaluate_base(repo)
    states["report"] = report(repo)
    if bandit_too:
        states["bandit"] = bandit(repo)
    return states


def main() -> None:
    ap = argparse.ArgumentParser(description="Run the riskrl study as a Prefect flow (each task one DVC stage).")
    ap.add_argument("--repo", default=str(ROOT))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="params.yaml override key=value")
    ap.add_argument("--no-bandit", action="store_true")
    args = ap.parse_args()
    print(study(repo=args.repo, overrides=args.overrides, bandit_too=not args.no_bandit))


if __name__ == "__main__":
    main()
