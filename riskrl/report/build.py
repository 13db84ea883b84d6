"""Build the Markdown comparison report (``report.md`` + PNGs + CSVs) from a set of runs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from riskrl.evaluation.metrics import MACRO
from riskrl.io import write_json, write_text
from riskrl.report.paired import BASELINE, PAIRED_KS, paired_differences, paired_markdown
from riskrl.report.plots import plot_passk_curves, plot_quantiles, plot_training, plot_vs_lr, slug
from riskrl.report.readme import PROVENANCE, provenance
from riskrl.report.runs import BASE, Run, discover_runs, group_runs, load_run
from riskrl.report.tables import lost_gained, lost_gained_markdown, passk_markdown, passk_summary


@dataclass
class Report:
    """What ``build_report`` produced; ``passk_markdown`` is the table published as a Prefect artifact."""

    markdown: str
    passk_markdown: str
    summary: pd.DataFrame  # riskrl.report.tables.SUMMARY_COLUMNS
    changes: pd.DataFrame | None  # lost/gained per run and benchmark; None without a base
    figures: list[Path] = field(default_factory=list)
    path: Path | None = None  # report.md
    paired: pd.DataFrame | None = None  # riskrl.report.paired.PAIRED_COLUMNS: variant - baseline
    provenance: dict = field(default_factory=dict)  # machine, commit and study shape (provenance.json)


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
    baseline: str = BASELINE,
    paired_ks: tuple[int, ...] = PAIRED_KS,
) -> Report:
    """Load ``runs`` (run directories or parents of them) and ``base``; write into ``out_dir``:
    ``report.md``, ``passk_<bench>.png``, ``lr_<bench>.png``, ``training.png``, ``quantiles.png``
    (RiskPO variants), ``passk_summary.csv``, ``paired_diff.csv`` (each variant - ``baseline`` at
    the same lr), ``lost_gained.csv`` and ``provenance.json``. Every file is written atomically."""
    out = Path(out_dir)
    trained = [load_run(p, maj_subsamples=maj_subsamples, seed=seed) for p in discover_runs(list(runs))]
    base_run = (
        load_run(base, is_base=True, maj_subsamples=maj_subsamples, seed=seed) if base is not None else None
    )
    groups = group_runs(trained)
    all_groups = ({(BASE, None): [base_run]} if base_run else {}) | groups
    summary = passk_summary(all_groups, n_boot=n_boot, seed=seed)
    changes = lost_gained([r for rs in groups.values() for r in rs], base_run) if base_run else None
    paired = paired_differences(groups, base_run, baseline=baseline, ks=paired_ks, n_boot=n_boot, seed=seed)

    figures = plot_passk_curves(summary, out) + plot_vs_lr(summary, out, k_high=k_high)
    training = plot_training(groups, out)
    quantiles = plot_quantiles(groups, out)
    figures += [f for f in (training, quantiles) if f]
    write_text(out / "passk_summary.csv", summary.to_csv(index=False))
    write_text(out / "paired_diff.csv", paired.to_csv(index=False))
    prov = provenance(trained, base_run)
    write_json(out / PROVENANCE, prov)
    if changes is not None:
        flat = changes.assign(
            lost_ids=changes["lost_ids"].map(" ".join), gained_ids=changes["gained_ids"].map(" ".join)
        )
        write_text(out / "lost_gained.csv", flat.to_csv(index=False))

    table = passk_markdown(summary)
    paired_md = _paired_section(paired, baseline, quantiles is not None)
    md = _markdown(title, trained, base_run, groups, summary, table, changes, paired_md, training, k_high)
    path = write_text(out / "report.md", md)
    return Report(
        markdown=md, passk_markdown=table, summary=summary, changes=changes, figures=figures, path=path,
        paired=paired, provenance=prov,
    )  # fmt: skip


def _paired_section(paired: pd.DataFrame, baseline: str, quantiles: bool) -> str:
    s = [f"## Paired differences against {baseline}\n"]
    if paired.empty:
        s.append(f"_no variant shares a learning rate with the baseline `{baseline}`_\n")
    else:
        s.append(
            "Each variant minus the baseline at the same learning rate on the same problems. The CI "
            "resamples problems (one draw for both policies, so problem difficulty cancels) and, "
            "independently, each policy's seeds. Difficulty buckets: the base model's pass@1 on the problem.\n"
        )
        s.append(paired_markdown(paired))
    s.append(_QUANTILES if quantiles else "")
    return "\n".join(s) + "\n"


_QUANTILES = (
    "## RiskPO's tracked quantiles\n\n"
    "The 19 quantiles of the paper scores the tracker follows (colour = level) and the bounds a, b the "
    "advantage used, mean over seeds.\n\n![tracked quantiles](quantiles.png)\n"
)


def _markdown(
    title: str,
    trained: list[Run],
    base: Run | None,
    groups: dict[tuple[str, float | None], list[Run]],
    summary: pd.DataFrame,
    table: str,
    changes: pd.DataFrame | None,
    paired_md: str,
    training: Path | None,
    k_high: int,
) -> str:
    benches = sorted(b for b in summary["benchmark"].unique() if b != MACRO)
    plotted = benches + ([MACRO] if (summary["benchmark"] == MACRO).any() else [])
    variants = sorted({r.variant for r in trained})
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
        f"{len(trained)} trained run(s) in {len(groups)} group(s): variants {', '.join(variants) or '–'}; "
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
    s.append(paired_md)
    s.append("## Training curves\n")
    s.append("![training curves](training.png)\n" if training else "_no training logs found_\n")
    s.append("## Runs\n")
    s.append("| run | variant | estimator | lr | seed | path |\n|---|---|---|---|---|---|")
    for run in ([base] if base else []) + [r for rs in groups.values() for r in rs]:
        lr = "–" if run.lr is None else f"{run.lr:g}"
        seed = "–" if run.seed is None else str(run.seed)
        s.append(f"| {run.name} | {run.variant} | {run.estimator} | {lr} | {seed} | `{run.path}` |")
    return "\n".join(s) + "\n"
