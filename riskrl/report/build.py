"""Build the Markdown comparison report (``report.md`` + PNGs + CSVs) from a set of runs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from riskrl.evaluation.metrics import MACRO
from riskrl.io import write_text
from riskrl.report.plots import plot_passk_curves, plot_training, plot_vs_lr, slug
from riskrl.report.runs import BASE, Run, discover_runs, group_runs, load_run
from riskrl.report.tables import group_label, lost_gained, lost_gained_markdown, passk_markdown, passk_summary


@dataclass
class Report:
    """What ``build_report`` produced; ``passk_markdown`` is the table published as a Prefect artifact."""

    markdown: str
    passk_markdown: str
    summary: pd.DataFrame  # riskrl.report.tables.SUMMARY_COLUMNS
    changes: pd.DataFrame | None  # lost/gained per run and benchmark; None without a base
    figures: list[Path] = field(default_factory=list)
    path: Path | None = None  # report.md


def build_report(
    runs: list[str | os.PathLike],
    base: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    title: str = "riskrl: Pass@k comparison",
    n_boot: int = 1000,
    seed: int = 0,
    maj_subsamples: int = 256,
    k_high: int = 16,
) -> Report:
    """Load ``runs`` (run directories or parents of them) and ``base``; write into ``out_dir``:
    ``report.md``, ``passk_<bench>.png``, ``lr_<bench>.png``, ``training.png``,
    ``passk_summary.csv`` and ``lost_gained.csv``. Every file is written atomically."""
    out = Path(out_dir)
    trained = [load_run(p, maj_subsamples=maj_subsamples, seed=seed) for p in discover_runs(list(runs))]
    base_run = (
        load_run(base, is_base=True, maj_subsamples=maj_subsamples, seed=seed) if base is not None else None
    )
    groups = group_runs(trained)
    all_groups = ({(BASE, None): [base_run]} if base_run else {}) | groups
    summary = passk_summary(all_groups, n_boot=n_boot, seed=seed)
    changes = lost_gained([r for rs in groups.values() for r in rs], base_run) if base_run else None

    figures = plot_passk_curves(summary, out) + plot_vs_lr(summary, out, k_high=k_high)
    training = plot_training(groups, out)
    figures += [training] if training else []
    write_text(out / "passk_summary.csv", summary.to_csv(index=False))
    if changes is not None:
        flat = changes.assign(
            lost_ids=changes["lost_ids"].map(" ".join), gained_ids=changes["gained_ids"].map(" ".join)
        )
        write_text(out / "lost_gained.csv", flat.to_csv(index=False))

    table = passk_markdown(summary)
    md = _markdown(title, trained, base_run, groups, summary, table, changes, training, k_high)
    path = write_text(out / "report.md", md)
    return Report(
        markdown=md, passk_markdown=table, summary=summary, changes=changes, figures=figures, path=path
    )


def _markdown(
    title: str,
    trained: list[Run],
    base: Run | None,
    groups: dict[tuple[str, float | None], list[Run]],
    summary: pd.DataFrame,
    table: str,
    changes: pd.DataFrame | None,
    training: Path | None,
    k_high: int,
) -> str:
    benches = sorted(b for b in summary["benchmark"].unique() if b != MACRO)
    plotted = benches + ([MACRO] if (summary["benchmark"] == MACRO).any() else [])
    estimators = sorted({r.estimator for r in trained})
    lrs = sorted({r.lr for r in trained if r.lr is not None})
    seeds = sorted({r.seed for r in trained if r.seed is not None})
    n_by_bench = {
        b: int(
            pd.concat([r.problems for r in trained + ([base] if base else [])])
            .query("benchmark == @b")["n"]
            .min()
        )
        for b in benches
    }
    s = [f"# {title}\n"]
    s.append(
        f"{len(trained)} trained run(s) in {len(groups)} group(s): estimators {', '.join(estimators) or '–'}; "
        f"learning rates {', '.join(f'{x:g}' for x in lrs) or '–'}; seeds {', '.join(map(str, seeds)) or '–'}. "
        + (f"Base: `{base.path}`.\n" if base else "No base run.\n")
    )
    s.append(
        "Benchmarks (samples per problem): " + ", ".join(f"{b} (n={n_by_bench[b]})" for b in benches) + ".\n"
    )
    s.append(
        "pass@k is the unbiased estimator 1 - C(n-c,k)/C(n,k) averaged over problems; maj@k the "
        "majority vote over k of the n samples; macro = mean over benchmarks.\n"
    )
    s.append("## Pass@k\n")
    s.append(table)
    s.append("## Pass@k curves\n")
    s += [f"![Pass@k, {b}](passk_{slug(b)}.png)\n" for b in plotted]
    s.append(f"## Pass@1 and Pass@{k_high} (or the largest k) against learning rate\n")
    s.append("Error bars: sd across seeds. Dashed line and band: the base model and its CI.\n")
    s += [f"![pass@k vs lr, {b}](lr_{slug(b)}.png)\n" for b in plotted]
    s.append("## Problems lost and gained against the base\n")
    if changes is None:
        s.append("_no base run given_\n")
    else:
        s.append(
            "Lost: the base solved it at least once in its n samples and the run never; gained: the reverse.\n"
        )
        s.append(lost_gained_markdown(changes))
    s.append("## Training curves\n")
    s.append("![training curves](training.png)\n" if training else "_no training logs found_\n")
    s.append("## Runs\n")
    s.append("| run | estimator | lr | seed | path |\n|---|---|---|---|---|")
    for run in ([base] if base else []) + [r for rs in groups.values() for r in rs]:
        lr = "–" if run.lr is None else f"{run.lr:g}"
        seed = "–" if run.seed is None else str(run.seed)
        s.append(f"| {run.name} | {group_label(run.estimator, None)} | {lr} | {seed} | `{run.path}` |")
    return "\n".join(s) + "\n"
