"""report: the Markdown comparison report, the study's DVC metrics and plot tables."""

from __future__ import annotations

import json

import pandas as pd

from riskrl.config import Params
from riskrl.io import write_json, write_text
from riskrl.pipeline.outputs import staged_output
from riskrl.pipeline.paths import Paths
from riskrl.pipeline.stage import StageError


def report(p: Params, paths: Paths):
    """reports/ (report.md, figures, passk_summary.csv, paired_diff.csv, provenance.json), then
    metrics/study.json and plots/*.csv. README.md is not touched: after `dvc repro`,
    `python -m riskrl.report --readme` writes its results section from reports/."""
    from riskrl.report import build_report

    if not p.train.variants:
        raise StageError("train.variants is empty: nothing to report (the previous report is kept)")
    runs = [paths.evals(v) for v in p.train.variants]
    missing = [str(r) for r in runs if not r.is_dir()]
    missing += [str(paths.eval_metrics(v)) for v in p.train.variants if not paths.eval_metrics(v).is_file()]
    if missing:
        raise StageError(f"no evaluations at {', '.join(missing)}; run the evaluate stages first")
    base = paths.base_eval if paths.base_eval.is_dir() else None
    with staged_output(paths.reports) as tmp:  # the old report stays until the new one is complete
        rep = build_report([str(r) for r in runs], str(base) if base else None, tmp,
                           n_boot=p.report.n_boot, k_high=p.report.k_high)
    rep.path = paths.reports / rep.path.name if rep.path else None  # where they are after the swap
    rep.figures = [paths.reports / f.relative_to(tmp) for f in rep.figures]
    write_study_metrics(p, paths, rep.paired)
    return rep


def _label(variant: str, lr) -> str:
    return f"{variant} lr={lr:g}" if lr is not None else variant


def write_study_metrics(p: Params, paths: Paths, paired: pd.DataFrame | None = None) -> None:
    """metrics/study.json (Pass@k per variant x lr, mean over seeds, the base, and under
    ``paired`` each variant's difference to the baseline: ``<bench>/dpass@k``) and the
    long tables that `dvc plots` draws, one row per (label, x) with the grouping column
    ``label`` = "<variant> lr=<lr>", so any grid plots without naming its series:
    plots/passk.csv (first benchmark, mean over seeds: label, variant, lr, k, pass_at_k) and
    plots/training_{reward,entropy}.csv (mean over seeds: label, variant, lr, step, <value>)."""
    metrics: dict[str, dict] = {}
    passk, train = [], []
    for variant in p.train.variants:
        summary = json.loads(paths.eval_metrics(variant).read_text())
        for lr_key, figures in summary["mean_over_seeds"].items():
            metrics[f"{variant}/{lr_key}"] = figures
        for run_dir in sorted(x for x in paths.evals(variant).iterdir() if x.is_dir()):
            meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
            tags = {"label": _label(variant, meta.get("lr")), "variant": variant, "lr": meta.get("lr")}
            t = pd.read_csv(run_dir / "passk.csv")
            t = t[t["metric"] == "pass@k"]
            passk.append(t[t["benchmark"] == t["benchmark"].iloc[0]].assign(**tags))
            log = run_dir / "train_metrics.csv"
            if log.is_file():
                df = pd.read_csv(log)
                train.append(df[[c for c in ("step", "reward_mean", "entropy") if c in df]].assign(**tags))
    if paths.eval_metrics("base").is_file():
        metrics.update(json.loads(paths.eval_metrics("base").read_text()))
    if paired is not None and not paired.empty:
        overall = paired[paired["bucket"] == "all"]
        metrics["paired"] = {
            f"{label.replace(' lr=', '/lr')}/vs_{g['baseline'].iloc[0]}": {
                f"{r.benchmark}/dpass@{r.k}": round(float(r.diff), 6) for r in g.itertuples()
            }
            for label, g in overall.groupby("label", sort=False)
        }
    write_json(paths.study_metrics, metrics)
    keys = ["label", "variant", "lr"]
    if passk:
        long = pd.concat(passk).groupby([*keys, "k"], sort=False)["value"].mean().rename("pass_at_k").reset_index()
        write_text(paths.plots / "passk.csv", long.to_csv(index=False))
    if train:
        df = pd.concat(train)
        for col in ("reward_mean", "entropy"):
            if col in df:
                long = df.groupby([*keys, "step"], sort=False)[col].mean().reset_index()
                write_text(paths.plots / f"training_{col.split('_')[0]}.csv", long.to_csv(index=False))
