"""Synthetic runs for the report tests: 3 variants x 2 learning rates x 2 seeds + base."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from riskrl.evaluation.metrics import write_metrics

#: variant -> estimator; rs_grpo's run.json names only the estimator (as before variants existed)
VARIANTS = {"grpo": "grpo", "riskpo_track": "riskpo", "rs_grpo": "rs_grpo"}
LRS = (1e-6, 1e-5)
SEEDS = (0, 1)
BENCHMARKS = {"gsm8k": (12, 8), "math500": (10, 4)}  # name -> (problems, samples per problem)


def synthetic_samples(rng: np.random.Generator, skill: float) -> pd.DataFrame:
    """Samples tables for all benchmarks; problem difficulty fixed by problem id, skill shifts it."""
    rows = []
    for bench, (num_problems, n) in BENCHMARKS.items():
        for p in range(num_problems):
            p_true = float(np.clip(skill + 0.9 * np.sin(3.0 * p + len(bench)), 0.0, 1.0))
            for s in range(n):
                ok = rng.random() < p_true
                pred = f"{p}" if ok else ("" if rng.random() < 0.2 else f"w{rng.integers(0, 3)}")
                rows.append((bench, str(p), s, f"... {pred}", pred, float(ok), int(rng.integers(10, 60))))
    cols = ["benchmark", "problem_id", "sample_idx", "response", "pred", "score", "num_tokens"]
    return pd.DataFrame(rows, columns=cols)


def write_run(
    path: Path, samples: pd.DataFrame, meta: dict | None, log: pd.DataFrame | None, fmt: str
) -> None:
    (path / "samples").mkdir(parents=True)
    for bench, df in samples.groupby("benchmark"):
        df.to_parquet(path / "samples" / f"{bench}.parquet", index=False)
    write_metrics(path / "samples", path / "metrics.json", n_boot=100)
    if meta is not None:
        (path / "run.json").write_text(json.dumps(meta))
    if log is not None and fmt == "csv":
        log.to_csv(path / "train_metrics.csv", index=False)
    elif log is not None:  # verl FileLogger rows
        with open(path / "train_metrics.jsonl", "w") as f:
            for rec in log.to_dict("records"):
                step = int(rec.pop("step"))
                f.write(json.dumps({"step": step, "data": rec}) + "\n")


def training_log(rng: np.random.Generator, estimator: str, lr: float, steps: int = 20) -> pd.DataFrame:
    t = np.arange(1, steps + 1)
    log = pd.DataFrame(
        {
            "step": t,
            "reward_mean": 0.3 + 0.02 * t * lr * 1e5 / 5 + 0.01 * rng.standard_normal(steps),
            "entropy": 1.0 - 0.02 * t + 0.01 * rng.standard_normal(steps),
            "response_length": 40 + rng.standard_normal(steps),
            "adv_mean": np.zeros(steps),
            "adv_std": np.ones(steps),
        }
    )
    if estimator == "riskpo":
        log["riskpo/a"] = 0.1 + 0.005 * t
        log["riskpo/b"] = 0.8 + 0.002 * t
        for level in np.round(np.arange(1, 20) * 0.05, 2):  # the tracker's 19 levels
            log[f"riskpo/q_{level:.2f}"] = level + 0.001 * t
        log["mode"] = 1
    return log


def make_runs(root: Path) -> dict:
    """{"grid": parent dir of the 12 runs, "base": base dir, "samples": {name: DataFrame}, "meta": {...}}."""
    rng = np.random.default_rng(1234)
    samples, meta = {}, {}
    base = root / "base"
    samples["base"] = synthetic_samples(rng, 0.35)
    write_run(base, samples["base"], {"name": "base"}, None, "csv")
    for i, (variant, est) in enumerate(VARIANTS.items()):
        for j, lr in enumerate(LRS):
            for seed in SEEDS:
                name = f"{variant}-lr{lr:g}-s{seed}"
                samples[name] = synthetic_samples(rng, 0.3 + 0.05 * i + 0.05 * j)
                meta[name] = {"estimator": est, "lr": lr, "seed": seed, "name": name, "num_threads": 1}
                if variant != est:
                    meta[name]["variant"] = variant
                fmt = "jsonl" if est == "rs_grpo" else "csv"
                write_run(root / "grid" / name, samples[name], meta[name], training_log(rng, est, lr), fmt)
    return {"grid": root / "grid", "base": base, "samples": samples, "meta": meta}
