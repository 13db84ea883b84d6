"""report: the Markdown comparison report, the study's DVC metrics and plot tables."""

from __future__ import annotations

import json

import pandas as pd

from riskrl.config import Params
from riskrl.io import write_json, write_text
from riskrl.pipeline.paths import Paths
from riskrl.pipeline.stage import StageError


def report(p: Params, paths: Paths):
    from riskrl.report import build_report

    runs = [paths.evals(e) for e in p.train.estimators]
    missing = [str(r) for r in runs if not r.is_dir()]
    if missing:
        raise StageError(f"no evaluations at {', '.join(missing)}; run the evaluate stages first")
    base = paths.base_eval if paths.base_eval.is_dir() else None
    rep = build_report([str(r) for r in runs], str(base) if base else None, paths.reports,
                       n_boot=p.report.n_boot, k_high=p.report.k_high)
    write_study_metrics(p, paths)
    return rep


def _label(est: str, lr) -> str:
    return f"{est} lr={lr:g}" if lr is not None else est


def write_study_metrics(p: Params, paths: Paths) -> None:
    """metrics/study.json (Pass@k per estimator x lr, mean over seeds, and the base) and the
    wide tables that `dvc plots` draws: plots/passk.csv (first benchmark, mean over seeds,
    one column per estimator x lr) and plots/training_{reward,entropy}.csv (mean over seeds)."""
    metrics: dict[str, dict] = {}
    passk, train = [], []
    for est in p.train.estimators:
        summary = json.loads(paths.eval_metrics(est).read_text())
        for lr_key, figures in summary["mean_over_seeds"].items():
            metrics[f"{est}/{lr_key}"] = figures
        for run_dir in sorted(x for x in paths.evals(est).iterdir() if x.is_dir()):
            meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
            label = _label(est, meta.get("lr"))
            t = pd.read_csv(run_dir / "passk.csv")
            t = t[t["metric"] == "pass@k"]
            passk.append(t[t["benchmark"] == t["benchmark"].iloc[0]].assign(label=label))
            log = run_dir / "train_metrics.csv"
            if log.is_file():
                df = pd.read_csv(log)
                train.append(df[[c for c in ("step", "reward_mean", "entropy") if c in df]].assign(label=label))
    if paths.eval_metrics("base").is_file():
        metrics.update(json.loads(paths.eval_metrics("base").read_text()))
    write_json(paths.study_metrics, metrics)
    if passk:
        wide = pd.concat(passk).groupby(["k", "label"])["value"].mean().unstack("label").reset_index()
        write_text(paths.plots / "passk.csv", wide.to_csv(index=False))
    if train:
        df = pd.concat(train)
        for col in ("reward_mean", "entropy"):
            if col in df:
                wide = df.groupby(["step", "label"])[col].mean().unstack("label").reset_index()
                write_text(paths.plots / f"training_{col.split('_')[0]}.csv", wide.to_csv(index=False))
