"""Prepare a source into verl's ``RLHFDataset`` parquet schema (``riskrl.data.schema``).

For every source row, in the source's order: the adapter extracts problem, answer and id;
rows without an answer or with an empty problem are dropped; duplicates of an earlier problem
(same ``normalize_problem``) are dropped, keeping the first; problems found in the
``decontaminate`` files (prepared benchmarks) are dropped; then ``limit`` keeps the first rows.
The prompt is rendered with the source's template (or ``template``). ``extra_info.index`` is
the row's position in the output. The parquet file and a ``.summary.json`` next to it are
written atomically: a failure leaves neither behind.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from riskrl.data.loading import iter_records
from riskrl.data.schema import DEFAULT_ABILITY, PreparedRow, to_frame, to_python
from riskrl.data.sources import BadCell, DataError, RawProblem, Source, get_source
from riskrl.data.templates import TEMPLATES, problem_hash, render, strip_template
from riskrl.io import write_json, write_parquet

if TYPE_CHECKING:
    import pandas as pd  # imported where used: `import riskrl.data` in every stage stays light


@dataclass
class PrepareResult:
    path: Path  # the parquet file
    summary_path: Path  # <stem>.summary.json
    summary: dict[str, Any]
    frame: pd.DataFrame


def problem_of(row: Mapping[str, Any]) -> str:
    """Raw problem text of a prepared row: ``extra_info.problem``, else the last user message."""
    extra = to_python(row.get("extra_info")) or {}
    if isinstance(extra, dict) and extra.get("problem"):
        return str(extra["problem"])
    prompt = to_python(row.get("prompt")) or []
    users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    return strip_template(str(users[-1])) if users else ""


def problem_hashes(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
    """``{problem_hash: file name}`` over the prepared files ``paths``."""
    out: dict[str, str] = {}
    for p in paths:
        if not Path(p).exists():
            raise DataError(f"decontamination file not found: {p}")
        try:
            import pandas as pd

            df = pd.read_parquet(p)
        except Exception as e:  # not parquet at all
            raise DataError(f"{p}: cannot read as parquet ({type(e).__name__}: {e})") from None
        df = df[[c for c in ("prompt", "extra_info") if c in df.columns]]
        for rec in df.to_dict("records"):
            out.setdefault(problem_hash(problem_of(rec)), Path(p).name)
    return out


def build_rows(
    problems: Iterable[RawProblem],
    *,
    data_source: str,
    split: str,
    template: str,
    system_prompt: str | None = None,
    ability: str = DEFAULT_ABILITY,
    limit: int | None = None,
    exclude: Mapping[str, str] | None = None,
    total: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Prepared rows (plain dicts in ``COLUMNS`` order) and drop counts; see module docstring."""
    render("", template)  # unknown template -> one-line error before any work
    stats = {"read": 0, "no_answer": 0, "empty_problem": 0, "duplicate": 0, "conflicting_duplicate": 0}
    stats |= {"contaminated": 0, "over_limit": 0}
    seen: dict[str, str] = {}  # problem hash -> answer of its first occurrence
    rows: list[dict[str, Any]] = []
    for p in tqdm(problems, total=total, desc=f"prepare {data_source}/{split}", unit="row", disable=None):
        stats["read"] += 1
        if not p.problem.strip():
            stats["empty_problem"] += 1
            continue
        if not p.answer:
            stats["no_answer"] += 1
            continue
        h = problem_hash(p.problem)
        if h in seen:  # each dropped row counted once: same answer, or a different one
            stats["conflicting_duplicate" if seen[h] != p.answer else "duplicate"] += 1
            continue
        seen[h] = p.answer
        if exclude and h in exclude:
            stats["contaminated"] += 1
            continue
        if limit is not None and len(rows) >= limit:
            stats["over_limit"] += 1
            continue
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": render(p.problem, template)})
        extra = {"index": len(rows), "split": split, "source_id": p.source_id, "problem": p.problem.strip()}
        rows.append(
            {
                "data_source": data_source,
                "prompt": messages,
                "ability": ability,
                "reward_model": {"style": "rule", "ground_truth": p.answer},
                "extra_info": extra | {k: v for k, v in p.meta.items() if k not in extra},
            }
        )
    return rows, stats


def _synthetic_rows(
    split: str, n: int | None, seed: int, difficulty: Mapping[str, Any]
) -> list[dict[str, Any]]:
    if n is None:
        raise DataError("source 'synthetic' needs n, the number of problems (--n N)")
    try:
        from riskrl.embedded.task import generate_rows
    except ImportError as e:
        raise DataError(f"source 'synthetic' needs riskrl.embedded.task.generate_rows ({e})") from None
    try:
        rows = generate_rows(n, seed, split, **dict(difficulty))
    except (TypeError, ValueError) as e:
        raise DataError(f"synthetic task: {' '.join(str(e).split())}") from None
    return [PreparedRow.model_validate(r).record() for r in rows]


def _length_stats(rows: list[dict[str, Any]]) -> dict[str, float]:
    lengths = [sum(len(m["content"]) for m in r["prompt"]) for r in rows] or [0]
    return {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)}


def prepare(
    source: str,
    out_dir: str | os.PathLike,
    *,
    split: str | None = None,
    local: Sequence[str | os.PathLike] | None = None,
    revision: str | None = None,
    template: str | None = None,
    system_prompt: str | None = None,
    limit: int | None = None,
    decontaminate: Sequence[str | os.PathLike] = (),
    data_source: str | None = None,
    cache_dir: str | None = None,
    n: int | None = None,
    seed: int = 0,
    difficulty: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> PrepareResult:
    """Prepare ``source``'s ``split`` into ``out_dir/<name>.parquet`` (default name ``<source>_<split>``).

    Hub sources read ``local`` copies when given, else the Hub at ``revision``. ``synthetic``
    takes ``n``, ``seed`` and ``difficulty`` (``riskrl.embedded.task.TaskConfig`` fields).
    """
    src: Source = get_source(source)
    split = split or src.default_split
    if split not in src.splits:
        raise DataError(f"source {source!r} has no split {split!r}; known: {', '.join(src.splits)}")
    template = template or src.template
    if template not in TEMPLATES:
        raise DataError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be >= 1, got {limit}")
    if src.kind == "synthetic":
        rows = _synthetic_rows(split, n, seed, difficulty or {})
        stats: dict[str, int] = {"read": len(rows)}
        data_source = rows[0]["data_source"] if rows else "riskrl/synthetic"
        origin = "riskrl.embedded.task"
    else:
        data_source = data_source or src.hub_id or "local"
        exclude = problem_hashes(decontaminate) if decontaminate else None
        records, total, origin = iter_records(src, split, local=local, revision=revision, cache_dir=cache_dir)

        def adapted() -> Iterable[RawProblem]:
            for i, rec in enumerate(records):
                try:
                    yield src.adapter(rec, f"{split}:{i}")
                except KeyError as e:
                    cols = ", ".join(sorted(rec))
                    raise DataError(
                        f"{origin}: row {i} of {source} has no column {e.args[0]} (columns: {cols})"
                    ) from None
                except BadCell as e:
                    raise DataError(f"{origin}: row {i} of {source}: {e}") from None

        rows, stats = build_rows(
            adapted(), data_source=data_source, split=split, template=template, system_prompt=system_prompt,
            limit=limit, exclude=exclude, total=total,
        )  # fmt: skip
    if not rows:
        raise DataError(f"{source}/{split}: no rows left to write ({stats})")
    frame = to_frame(rows)
    stem = name or f"{source}_{split}"
    out = Path(out_dir) / f"{stem}.parquet"
    summary = {
        "source": source,
        "data_source": data_source,
        "origin": origin,
        "revision": revision,
        "split": split,
        "template": template if src.kind != "synthetic" else None,
        "rows": len(rows),
        "dropped": {k: v for k, v in stats.items() if k != "read"},
        "read": stats["read"],
        "prompt_chars": _length_stats(rows),
        "output": out.name,  # not the path: the folder may be a temporary one (DVC hashes this file)
    }
    write_parquet(out, frame)
    summary_path = write_json(out.with_suffix(".summary.json"), summary)
    return PrepareResult(path=out, summary_path=summary_path, summary=summary, frame=frame)
