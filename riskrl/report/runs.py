"""Loading runs for the report: metrics, samples, training log and metadata of each run directory.

A run directory holds::

    run.json            {"variant": "riskpo_track", "estimator": "riskpo", "lr": 1e-6, "seed": 0,
                         "name": "riskpo_track/lr1e-06_s0"}   ("variant" defaults to "estimator")
    metrics.json        riskrl.evaluation metrics (recomputed from samples/ when absent)
    problems.parquet    per-problem figures as the evaluate stage computed them (recomputed from
                        samples/ when absent or made with other maj@k settings)
    samples/*.parquet   samples tables (riskrl.evaluation.schema)
    train_metrics.csv   or train_metrics.jsonl: step, reward_mean, entropy, riskpo/a, riskpo/b,
                        riskpo/q_0.05 .. riskpo/q_0.95 (RiskPO's tracked quantiles), ...

The base run (the model before training) needs no run.json and no training log.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskrl.evaluation.metrics import PROBLEMS_FILE, problem_table, read_problem_table, summarize_problems
from riskrl.evaluation.schema import read_samples

BASE = "base"
#: report column -> names it may have in a training log (ours first, then verl's logger keys).
TRAIN_ALIASES: dict[str, tuple[str, ...]] = {
    "reward_mean": ("reward_mean", "critic/score/mean", "critic/rewards/mean"),
    "entropy": ("entropy", "actor/entropy"),
    "response_length": ("response_length", "response_length/mean"),
    "riskpo/a": ("riskpo/a",),
    "riskpo/b": ("riskpo/b",),
}


@dataclass
class Run:
    """One evaluated model: a trained run (variant, lr, seed) or the base model.

    ``variant`` is the study's label of the configuration (an estimator plus its options, e.g.
    ``riskpo_batch``); ``estimator`` the verl estimator it runs (``riskpo``).
    """

    path: Path
    name: str
    variant: str
    lr: float | None
    seed: int | None
    metrics: dict[str, dict]  # riskrl.evaluation metrics dict
    problems: pd.DataFrame  # per-problem figures (riskrl.evaluation.metrics.problem_table)
    train: pd.DataFrame | None  # training log indexed by nothing, with a 'step' column
    is_base: bool = False
    estimator: str = ""
    meta: dict = field(default_factory=dict)  # run.json as written by the trainer

    @property
    def group(self) -> tuple[str, float | None]:
        """Seeds of the same (variant, lr) are averaged together."""
        return (self.variant, self.lr)


def discover_runs(paths: list[str | os.PathLike]) -> list[Path]:
    """Run directories from ``paths``: each path is a run (has samples/ or metrics.json) or a
    directory whose sub-directories are runs (e.g. ``runs/`` of a ``dvc repro`` grid)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise ValueError(f"run directory '{p}' does not exist")
        if _is_run(p):
            found.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if d.is_dir() and _is_run(d))
        if not subs:
            raise ValueError(f"'{p}' is not a run (no samples/ or metrics.json) and holds no run directories")
        found.extend(subs)
    if len(set(found)) != len(found):
        raise ValueError("the same run directory was given twice")
    return found


def _is_run(p: Path) -> bool:
    return (p / "metrics.json").is_file() or (p / "samples").is_dir()


def read_training_log(path: str | os.PathLike) -> pd.DataFrame:
    """A training log (CSV, or JSONL of flat rows or verl FileLogger ``{"step", "data"}`` rows)
    as numeric columns with a ``step`` column, one row per step (duplicates averaged)."""
    path = Path(path)
    if path.suffix == ".csv":
        df = pd.read_csv(path)
    else:
        rows = []
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"training log '{path}' line {i + 1} is not JSON ({e.msg})") from None
                if isinstance(row.get("data"), dict):  # verl FileLogger
                    row = {"step": row.get("step"), **row["data"]}
                rows.append(row)
        df = pd.DataFrame(rows)
    if "step" not in df.columns:
        raise ValueError(f"training log '{path}' has no 'step' column")
    df = df.apply(pd.to_numeric, errors="coerce").dropna(axis=1, how="all").dropna(subset=["step"])
    for col, names in TRAIN_ALIASES.items():
        if col not in df.columns:
            for alias in names:
                if alias in df.columns:
                    df[col] = df[alias]
                    break
    return df.groupby("step", as_index=False).mean().sort_values("step", ignore_index=True)


def _find_training_log(run_dir: Path) -> Path | None:
    for name in ("train_metrics.csv", "train_metrics.jsonl"):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def load_run(
    path: str | os.PathLike, *, is_base: bool = False, maj_subsamples: int = 256, seed: int = 0
) -> Run:
    """Load one run directory (layout in the module docstring)."""
    path = Path(path)
    meta: dict = {}
    if (path / "run.json").is_file():
        meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
    elif not is_base:
        raise ValueError(f"run '{path}' has no run.json (needs variant or estimator, lr, seed, name)")
    if not is_base:
        missing = [repr(k) for k in ("lr", "seed") if k not in meta]
        if not (meta.get("variant") or meta.get("estimator")):
            missing.insert(0, "'variant' (or 'estimator')")
        if missing:
            raise ValueError(f"run '{path}': run.json is missing {', '.join(missing)}")
    if not (path / "samples").is_dir():
        raise ValueError(f"run '{path}' has no samples/ directory")
    problems = read_problem_table(path / PROBLEMS_FILE, maj_subsamples=maj_subsamples, seed=seed)
    if problems is None:  # written by the evaluate stage; else computed from the samples
        problems = problem_table(read_samples(path / "samples"), maj_subsamples=maj_subsamples, seed=seed)
    if (path / "metrics.json").is_file():
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    else:
        metrics = summarize_problems(problems, seed=seed)
    log = _find_training_log(path)
    return Run(
        path=path,
        name=str(meta.get("name") or (BASE if is_base else path.name)),
        variant=BASE if is_base else str(meta.get("variant") or meta["estimator"]),
        lr=None if is_base else float(meta["lr"]),
        seed=None if is_base else int(meta["seed"]),
        metrics=metrics,
        problems=problems,
        train=read_training_log(log) if log is not None else None,
        is_base=is_base,
        estimator=BASE if is_base else str(meta.get("estimator") or meta["variant"]),
        meta=meta,
    )


def group_runs(runs: list[Run]) -> dict[tuple[str, float | None], list[Run]]:
    """Runs by (variant, lr), sorted by variant then lr; seeds sorted within a group."""
    groups: dict[tuple[str, float | None], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    order = sorted(groups, key=lambda g: (g[0], -np.inf if g[1] is None else g[1]))
    return {g: sorted(groups[g], key=lambda r: (r.seed is None, r.seed or 0, r.name)) for g in order}
