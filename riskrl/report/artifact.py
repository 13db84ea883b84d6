"""The Prefect Markdown artifact of a study run: what ran, its Pass@k and the change against main.

:func:`experiment_markdown` renders it from ``dvc metrics diff --json`` output (so its numbers
are DVC's), :func:`publish_markdown` publishes it under a key (the UI keeps one version history
per key: :func:`artifact_key` gives one per deployment). :func:`publish_prefect_artifact`
publishes a :class:`~riskrl.report.build.Report`'s Pass@k table (``python -m riskrl.report``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from riskrl.report.build import Report

ARTIFACT_KEY = "riskrl-passk"
# a 1400 px window fits a label column and about this many numeric columns of a Markdown table
MAX_NUMERIC_COLUMNS = 6

_METRIC = re.compile(r"^(?P<row>.+)/(?P<kind>pass|maj)@(?P<k>\d+)$")


def in_prefect_run() -> bool:
    """True inside a Prefect flow or task run (never when Prefect has not even been imported)."""
    if "prefect" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def artifact_key(deployment: str | None = None) -> str:
    """``riskrl-passk`` for a run outside a deployment, ``riskrl-passk-<deployment>`` inside one."""
    if not deployment:
        return ARTIFACT_KEY
    slug = re.sub(r"[^a-z0-9]+", "-", deployment.lower()).strip("-")
    return f"{ARTIFACT_KEY}-{slug}" if slug else ARTIFACT_KEY


def _check_key(key: str) -> None:
    if not re.fullmatch(r"[a-z0-9-]+", key):
        raise ValueError(
            f"Prefect artifact key must hold only lowercase letters, digits and dashes; got '{key}'"
        )


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.4f}"
    return str(x)


def _delta(x: Any) -> str:
    return "–" if x is None else f"{x:+.4f}"


def split_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, keep: int = 1,
                max_columns: int = MAX_NUMERIC_COLUMNS) -> str:
    """A Markdown table, cut into several that repeat the first ``keep`` columns when it has more
    than ``max_columns`` others, so each fits a 1400 px window."""
    fixed, rest = list(header[:keep]), list(range(keep, len(header)))
    chunks = [rest[i:i + max_columns] for i in range(0, len(rest), max_columns)] or [[]]
    out = []
    for cols in chunks:
        idx = list(range(keep)) + cols
        lines = ["| " + " | ".join(fixed + [header[c] for c in cols]) + " |",
                 "|" + "---|" * len(idx)]
        lines += ["| " + " | ".join(str(r[c]) for c in idx) + " |" for r in rows]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def flatten_diff(diff: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``dvc metrics diff --json`` ({file: {metric: {old, new, diff}}}) -> {metric: {old, new, diff}}."""
    out: dict[str, dict[str, Any]] = {}
    for _file, metrics in diff.items():
        for name, v in (metrics or {}).items():
            if isinstance(v, Mapping):
                out[name] = dict(v)
    return out


def passk_from_diff(diff: Mapping[str, Any]) -> tuple[list[str], dict[str, dict[int, dict[str, Any]]]]:
    """The pass@k entries of a metrics diff: (row labels in order, {row: {k: {old, new, diff}}}).

    A row is what precedes ``/pass@k`` in the metric name, e.g. ``riskpo/lr0.0003.multiply_test``.
    """
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    for name, v in flatten_diff(diff).items():
        m = _METRIC.match(name)
        if m and m["kind"] == "pass":
            rows.setdefault(m["row"], {})[int(m["k"])] = v
    # the macro average repeats the benchmark when a run has only one: drop it then
    benches = {r.rsplit(".", 1)[-1] for r in rows}
    if len(benches - {"macro"}) == 1:
        rows = {r: v for r, v in rows.items() if not r.endswith(".macro")}
    order = sorted(rows, key=lambda r: (r.startswith("base"), r))
    return order, rows


def experiment_markdown(
    *,
    experiment: str,
    overrides: Sequence[str],
    diff: Mapping[str, Any],
    baseline: str = "main",
    notes: Sequence[str] = (),
    report_path: str | None = None,
    commands: Sequence[str] = (),
) -> str:
    """One heading, the experiment and its overrides, notes (sub-sampling), this run's Pass@k
    (mean over seeds) and its change against ``baseline`` as ``dvc metrics diff`` gives it
    (value, baseline, delta), then where the full report is."""
    order, rows = passk_from_diff(diff)
    ks = sorted({k for r in rows.values() for k in r})
    lines = [f"# riskrl study: experiment `{experiment}`", ""]
    lines.append("Overrides: " + (", ".join(f"`{o}`" for o in overrides) if overrides
                                  else "none (the committed baseline)"))
    lines.append("")
    for note in notes:
        lines.append(f"> **Note:** {note}")
        lines.append("")
    if not rows:
        lines += ["_no Pass@k metrics in metrics/*.json_", ""]
    else:
        lines += ["**Pass@k of this run** (mean over seeds):", ""]
        table = [[r] + [_fmt(rows[r].get(k, {}).get("new")) for k in ks] for r in order]
        lines.append(split_table(["run.benchmark"] + [f"pass@{k}" for k in ks], table))
        shown = sorted({ks[0], ks[-1]})
        lines += [f"**Change against `{baseline}`** (`dvc metrics diff {baseline}`; pass@{', pass@'.join(map(str, shown))}):", ""]
        diff_rows = []
        for r in order:
            for k in shown:
                v = rows[r].get(k)
                if v is not None:
                    diff_rows.append([f"{r}/pass@{k}", _fmt(v.get("new")), _fmt(v.get("old")), _delta(v.get("diff"))])
        lines.append(split_table(["metric", "value", baseline, "change"], diff_rows))
    if report_path:
        lines += [f"Full report: `{report_path}`", ""]
    for c in commands:
        lines.append(f"- `{c}`")
    return "\n".join(lines).rstrip() + "\n"


def publish_markdown(markdown: str, *, key: str = ARTIFACT_KEY, description: str | None = None) -> UUID | None:
    """Create a keyed Markdown artifact; a no-op (None) outside a flow run."""
    _check_key(key)
    if not in_prefect_run():
        return None
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(markdown=markdown, key=key, description=description)


def publish_prefect_artifact(report: Report | str, *, key: str = ARTIFACT_KEY) -> UUID | None:
    """Create a keyed Markdown artifact with the Pass@k table; a no-op (None) outside a flow run.

    The key keeps version history in the Prefect UI; it may hold lowercase letters, digits, dashes.
    """
    _check_key(key)
    if not in_prefect_run():
        return None
    table = report if isinstance(report, str) else report.passk_markdown
    where = "" if isinstance(report, str) or report.path is None else f"\n\nFull report: `{report.path}`\n"
    body = table if table.lstrip().startswith("# ") else "# Pass@k\n\n" + table
    return publish_markdown(body + where, key=key, description="riskrl Pass@k table (mean over seeds)")
