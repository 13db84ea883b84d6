"""Report figures as PNG, drawn with matplotlib's object API (Agg canvas, no pyplot state).

Colour = variant, line style = learning rate; the base model is black and dashed.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from riskrl.evaluation.metrics import MACRO
from riskrl.io import atomic_path
from riskrl.report.runs import BASE, TRAIN_ALIASES, Run
from riskrl.report.tables import group_label

STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")
TRAIN_TITLES = {
    "reward_mean": "reward (mean)",
    "entropy": "policy entropy",
    "response_length": "response length",
    "riskpo/a": "tracked quantile a (lower)",
    "riskpo/b": "tracked quantile b (upper)",
}


def slug(name: str) -> str:
    """A file-name-safe version of a benchmark name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "benchmark"


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def _fixed_layout(fig: Figure) -> None:
    """Fixed margins for a one-row figure (cheaper than a layout engine's extra draw)."""
    width = fig.get_figwidth()  # inches; the y label and tick labels need about 0.8 in
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, bottom=0.13, top=0.91, wspace=0.28)


class _Styler:
    """Consistent colour per variant and line style per learning rate across all figures."""

    def __init__(self, variants: list[str], lrs: list[float]) -> None:
        self.colors = {e: f"C{i % 10}" for i, e in enumerate(sorted(set(variants) - {BASE}))}
        self.lrs = {lr: i for i, lr in enumerate(sorted(set(lrs)))}

    def __call__(self, variant: str, lr: float | None) -> dict:
        if variant == BASE:
            return {"color": "black", "linestyle": "--", "marker": "x"}
        i = self.lrs.get(lr, 0)
        return {"color": self.colors[variant], "linestyle": STYLES[i % 4], "marker": MARKERS[i % 6]}


def _styler(summary: pd.DataFrame) -> _Styler:
    lrs = [float(x) for x in summary["lr"].dropna().unique()]
    return _Styler(list(summary["variant"].unique()), lrs)


def _benchmarks(summary: pd.DataFrame) -> list[str]:
    names = sorted(b for b in summary["benchmark"].unique() if b != MACRO)
    return names + ([MACRO] if (summary["benchmark"] == MACRO).any() else [])


def plot_passk_curves(summary: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Per benchmark ``passk_<bench>.png``: pass@k (and maj@k) against log2 k, one line per group,
    the band is the bootstrap CI over problems."""
    style, out = _styler(summary), []
    for bench in _benchmarks(summary):
        df = summary[summary["benchmark"] == bench]
        metrics = [m for m in ("pass@k", "maj@k") if (df["metric"] == m).any()]
        fig = Figure(figsize=(5.2 * len(metrics), 4.0))
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            dm = df[df["metric"] == metric]
            for label, g in dm.groupby("label", sort=False):
                g = g.sort_values("k")
                x = np.log2(g["k"].to_numpy(dtype=float))
                st = style(g["variant"].iloc[0], g["lr"].iloc[0] if pd.notna(g["lr"].iloc[0]) else None)
                ax.plot(x, g["mean"], label=label, markersize=4, **st)
                ax.fill_between(x, g["ci_low"], g["ci_high"], color=st["color"], alpha=0.06, linewidth=0)
            ks = sorted(dm["k"].unique())
            ax.set_xticks(np.log2(ks), [str(k) for k in ks])
            ax.set_xlabel("k (log2 scale)")
            ax.set_ylabel(metric)
            ax.set_title(f"{metric} — {bench}")
            ax.grid(alpha=0.3)
        axes[-1].legend(fontsize=7, loc="lower right")
        _fixed_layout(fig)
        out.append(_save(fig, Path(out_dir) / f"passk_{slug(bench)}.png"))
    return out


def plot_vs_lr(summary: pd.DataFrame, out_dir: str | os.PathLike, *, k_high: int = 16) -> list[Path]:
    """Per benchmark ``lr_<bench>.png``: pass@1 and pass@k_high (or the largest k) against the
    learning rate, one line per variant with seed-sd error bars; the base as a dashed line."""
    style, out = _styler(summary), []
    passk = summary[summary["metric"] == "pass@k"]
    for bench in _benchmarks(summary):
        df = passk[passk["benchmark"] == bench]
        ks = sorted(df["k"].unique())
        if not ks:
            continue
        show = [1, k_high if k_high in ks else int(max(ks))]
        show = sorted(set(show), key=show.index)
        fig = Figure(figsize=(5.0 * len(show), 3.8))
        axes = fig.subplots(1, len(show), squeeze=False)[0]
        trained = df[df["variant"] != BASE]
        log_x = bool(len(trained)) and bool((trained["lr"] > 0).all())
        for ax, k in zip(axes, show, strict=True):
            dk = df[df["k"] == k]
            for est, g in dk[dk["variant"] != BASE].groupby("variant", sort=True):
                g = g.sort_values("lr")
                st = style(est, None)
                ax.errorbar(
                    g["lr"], g["mean"], yerr=g["sd"].fillna(0.0), label=est, color=st["color"],
                    marker="o", capsize=3, markersize=4,
                )  # fmt: skip
            base = dk[dk["variant"] == BASE]
            if len(base):
                b = base.iloc[0]
                ax.axhline(b["mean"], color="black", linestyle="--", linewidth=1, label=BASE)
                if math.isfinite(b["ci_low"]):
                    ax.axhspan(b["ci_low"], b["ci_high"], color="black", alpha=0.06, linewidth=0)
            if log_x:
                ax.set_xscale("log")
            ax.set_xlabel("learning rate")
            ax.set_ylabel(f"pass@{k}")
            ax.set_title(f"pass@{k} vs lr — {bench}")
            ax.grid(alpha=0.3)
        axes[-1].legend(fontsize=7)
        _fixed_layout(fig)
        out.append(_save(fig, Path(out_dir) / f"lr_{slug(bench)}.png"))
    return out


def plot_training(
    groups: dict[tuple[str, float | None], list[Run]], out_dir: str | os.PathLike
) -> Path | None:
    """``training.png``: reward, entropy, response length and tracked quantiles a, b over steps;
    per (variant, lr) the mean over seeds, the band spans min..max over seeds. None if no logs."""
    logged = {g: [r for r in runs if r.train is not None] for g, runs in groups.items()}
    logged = {g: runs for g, runs in logged.items() if runs}
    cols = [c for c in TRAIN_ALIASES if any(c in r.train.columns for runs in logged.values() for r in runs)]
    if not cols:
        return None
    style = _Styler([e for e, _ in logged], [lr for _, lr in logged if lr is not None])
    ncols = min(3, len(cols))
    nrows = math.ceil(len(cols) / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.4 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, col in zip(axes, cols, strict=False):
        for (est, lr), runs in logged.items():
            series = [r.train.set_index("step")[col] for r in runs if col in r.train.columns]
            if not series:
                continue
            wide = pd.concat(series, axis=1)  # (steps, seeds)
            st = style(est, lr)
            st.pop("marker")
            ax.plot(wide.index, wide.mean(axis=1), label=group_label(est, lr), linewidth=1.2, **st)
            if wide.shape[1] > 1:
                ax.fill_between(wide.index, wide.min(axis=1), wide.max(axis=1), color=st["color"], alpha=0.12)
        ax.set_title(TRAIN_TITLES[col])
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[len(cols) :]:
        ax.set_visible(False)
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes), key=lambda hl: len(hl[1]))
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8)
    return _save(fig, Path(out_dir) / "training.png")


QUANTILE = re.compile(r"^riskpo/q_(\d+(?:\.\d+)?)$")


def quantile_columns(train: pd.DataFrame | None) -> list[str]:
    """The tracked-quantile columns ``riskpo/q_<level>`` of a training log, by level."""
    if train is None:
        return []
    return sorted((c for c in train.columns if QUANTILE.match(c)), key=lambda c: float(QUANTILE.match(c)[1]))


def plot_quantiles(
    groups: dict[tuple[str, float | None], list[Run]], out_dir: str | os.PathLike
) -> Path | None:
    """``quantiles.png``: RiskPO's tracked quantiles q_0.05 .. q_0.95 of the paper scores over
    steps, one panel per (variant, lr) whose logs have them (mean over seeds; colour = level),
    with the bounds a and b it used dashed. None when no run tracked quantiles."""
    tracked = {g: [r for r in runs if quantile_columns(r.train)] for g, runs in groups.items()}
    tracked = {g: runs for g, runs in tracked.items() if runs}
    if not tracked:
        return None
    ncols = min(3, len(tracked))
    nrows = math.ceil(len(tracked) / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.4 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    cmap = colormaps["viridis"]
    for ax, ((variant, lr), runs) in zip(axes, tracked.items(), strict=False):
        cols = quantile_columns(runs[0].train)
        levels = [float(QUANTILE.match(c)[1]) for c in cols]
        for col, level in zip(cols, levels, strict=True):
            wide = pd.concat([r.train.set_index("step")[col] for r in runs if col in r.train.columns], axis=1)
            ax.plot(wide.index, wide.mean(axis=1), color=cmap(level), linewidth=0.9)
        for col, name, ls in (("riskpo/a", "a", "--"), ("riskpo/b", "b", ":")):
            series = [r.train.set_index("step")[col] for r in runs if col in r.train.columns]
            if series:
                ax.plot(pd.concat(series, axis=1).mean(axis=1), color="black", linestyle=ls, linewidth=1.2,
                        label=f"{name} (used)")  # fmt: skip
        ax.set_title(f"tracked quantiles — {group_label(variant, lr)}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("paper score")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=7, loc="best")
    for ax in axes[len(tracked) :]:
        ax.set_visible(False)
    sm = ScalarMappable(cmap=cmap, norm=Normalize(0, 1))
    fig.colorbar(sm, ax=list(axes[: len(tracked)]), label="quantile level", shrink=0.8)
    return _save(fig, Path(out_dir) / "quantiles.png")
