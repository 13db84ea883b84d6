"""Validate prepared files with great-expectations 1.x: one Expectation Suite per file.

Each file's rows get the helper columns of ``riskrl.data.checks`` and are validated by a
Checkpoint (one ValidationDefinition over a whole-DataFrame batch of an ephemeral context's
pandas Data Source) whose ``UpdateDataDocsAction`` writes Data Docs HTML into the output
directory. The suite expects:

- the five columns of ``schema.COLUMNS`` and at least one row;
- ``data_source`` / ``ability`` non-null strings, ``data_source`` non-empty;
- well-formed ``prompt`` / ``reward_model`` / ``extra_info`` (``*_check`` in {"ok"});
- a non-empty ``problem``; ``prompt_length`` <= ``max_prompt_length`` (when given);
- ``ground_truth`` present and non-empty, and parseable by math-verify;
- ``index`` a non-null int, unique; ``problem_key`` unique (no duplicate problems);
- training files only: ``contamination_check`` in {"ok"} against every benchmark file.

Output directory (written atomically, kept on failure so it can be opened)::

    validation.json          success, per file: rows, failures (one line each)
    results/<name>.json      GE validation result of each file
    data_docs/index.html     GE Data Docs

A failing suite raises ``ValidationFailed`` whose lines read
``<file>: <column>: <n> of <rows> rows fail <expectation>; e.g. row 3: 'x', row 9: 'y'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from riskrl.data.checks import OK, check_frame
from riskrl.data.prepare import problem_hashes
from riskrl.data.schema import COLUMNS
from riskrl.data.sources import DataError
from riskrl.io import atomic_path, write_json

SITE = "riskrl"
RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "unexpected_index_column_names": ["row"],
    "partial_unexpected_count": 20,
}


class ValidationFailed(DataError):
    """At least one suite failed; ``lines`` has one line per failed expectation."""

    def __init__(self, lines: list[str], out_dir: Path) -> None:
        self.lines, self.out_dir = lines, out_dir
        self.summary = f"{len(lines)} failed expectation(s); see {out_dir / 'data_docs' / 'index.html'}"
        first = "; ".join(lines[:2]) + ("; ..." if len(lines) > 2 else "")
        super().__init__(f"{len(lines)} failed expectation(s): {first} (all: {out_dir / 'validation.json'}, "
                         f"{out_dir / 'data_docs' / 'index.html'})")


@dataclass
class ValidationReport:
    success: bool
    out_dir: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def lines(self) -> list[str]:
        return [line for f in self.files.values() for line in f["failures"]]


def build_suite(name: str, columns: Sequence[str], *, max_prompt_length: int | None, is_train: bool):
    """The Expectation Suite for one prepared file that has the prepared ``columns``."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=name)
    add = suite.add_expectation
    add(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    for c in COLUMNS:
        add(gxe.ExpectColumnToExist(column=c))
    have = set(columns)
    for c in ("data_source", "ability"):
        if c in have:
            add(gxe.ExpectColumnValuesToNotBeNull(column=c))
            add(gxe.ExpectColumnValuesToBeOfType(column=c, type_="str"))
    if "data_source" in have:
        add(gxe.ExpectColumnValueLengthsToBeBetween(column="data_source", min_value=1))
    if "prompt" in have:
        add(gxe.ExpectColumnValuesToBeInSet(column="prompt_check", value_set=[OK]))
        add(gxe.ExpectColumnValueLengthsToBeBetween(column="problem", min_value=1))
        if max_prompt_length is not None:
            add(
                gxe.ExpectColumnValuesToBeBetween(
                    column="prompt_length", min_value=0, max_value=max_prompt_length
                )
            )
    if "reward_model" in have:
        add(gxe.ExpectColumnValuesToBeInSet(column="reward_model_check", value_set=[OK]))
        add(gxe.ExpectColumnValuesToNotBeNull(column="ground_truth"))
        add(gxe.ExpectColumnValueLengthsToBeBetween(column="ground_truth", min_value=1))
        add(gxe.ExpectColumnValuesToBeInSet(column="ground_truth_check", value_set=[OK]))
    if "extra_info" in have:
        add(gxe.ExpectColumnValuesToBeInSet(column="extra_info_check", value_set=[OK]))
        add(gxe.ExpectColumnValuesToNotBeNull(column="index"))
        add(gxe.ExpectColumnValuesToBeOfType(column="index", type_="int"))
        add(gxe.ExpectColumnValuesToBeUnique(column="index"))
    if "prompt" in have or "extra_info" in have:
        add(gxe.ExpectColumnValuesToBeUnique(column="problem_key"))
    if is_train:
        add(gxe.ExpectColumnValuesToBeInSet(column="contamination_check", value_set=[OK]))
    return suite


def _example(value: Any, n: int = 50) -> str:
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    text = repr(value)
    return text if len(text) <= n else text[: n - 4] + "...'"


def failure_lines(name: str, result) -> list[str]:
    """One line per failed expectation of a GE ``ExpectationSuiteValidationResult``."""
    lines = []
    for r in result.results:
        if r.success:
            continue
        cfg, res = r.expectation_config, r.result or {}
        column = cfg.kwargs.get("column") or "table"
        if r.exception_info and r.exception_info.get("raised_exception"):
            lines.append(f"{name}: {column}: {cfg.type} raised {r.exception_info.get('exception_message')}")
            continue
        if "unexpected_count" not in res:  # table-level: column missing, no rows
            observed = res.get("observed_value")
            what = (
                f"column {cfg.kwargs['column']!r} is missing"
                if cfg.type == "expect_column_to_exist"
                else cfg.type
            )
            lines.append(
                f"{name}: {column}: {what}" + (f" (observed {observed!r})" if observed is not None else "")
            )
            continue
        idx = res.get("partial_unexpected_index_list") or []
        examples = [f"row {d.get('row')}: {_example(d.get(column))}" for d in idx[:2]]
        if not examples:
            examples = [_example(v) for v in (res.get("partial_unexpected_list") or [])[:2]]
        n, total = res.get("unexpected_count"), res.get("element_count")
        lines.append(f"{name}: {column}: {n} of {total} rows fail {cfg.type}; e.g. " + ", ".join(examples))
    return lines


def _context(docs_dir: Path):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # no usage statistics (the stage may run where nothing outside is reachable), no tqdm noise
    config = DataContextConfig(analytics_enabled=False, store_backend_defaults=InMemoryStoreBackendDefaults())
    ctx = gx.get_context(mode="ephemeral", project_config=config)
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    for site in list(ctx.list_data_docs_sites()):  # the default site writes to a temp dir
        ctx.delete_data_docs_site(site)
    ctx.add_data_docs_site(
        SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return ctx


def _names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        name = p.name.removesuffix(".parquet")
        while name in names:
            name += "_"
        names.append(name)
    return names


def validate(
    train: Sequence[str | os.PathLike],
    benchmarks: Sequence[str | os.PathLike] = (),
    *,
    out_dir: str | os.PathLike,
    max_prompt_length: int | None = None,
    length_fn: Callable[[list[dict]], int] | None = None,
    raise_on_failure: bool = True,
) -> ValidationReport:
    """Validate training files ``train`` and benchmark files ``benchmarks``; see module docstring.

    Training files are also checked for contamination against every benchmark file.
    ``length_fn(messages) -> int`` measures prompts (default: characters of the contents).
    """
    import great_expectations as gx

    paths = [Path(p) for p in (*train, *benchmarks)]
    if not paths:
        raise DataError("nothing to validate: pass at least one prepared parquet file")
    for p in paths:
        if not p.is_file():
            raise DataError(f"prepared file not found: {p}")
    eval_hashes = problem_hashes(list(benchmarks)) if benchmarks else {}
    report = ValidationReport(success=True, out_dir=Path(out_dir))
    with atomic_path(out_dir, is_dir=True) as tmp:
        ctx = _context((tmp / "data_docs").resolve())
        source = ctx.data_sources.add_pandas("prepared")
        for k, (path, name) in enumerate(zip(paths, _names(paths), strict=True)):
            is_train = k < len(train)
            try:
                table = pq.read_table(path)
            except Exception as e:  # not parquet at all
                raise DataError(f"{path}: cannot read as parquet ({type(e).__name__}: {e})") from None
            hashes = eval_hashes if is_train else None
            df = check_frame(table.to_pylist(), length_fn=length_fn, eval_hashes=hashes, desc=name)
            have = [c for c in COLUMNS if c in table.column_names]
            batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
            suite = ctx.suites.add(
                build_suite(name, have, max_prompt_length=max_prompt_length, is_train=is_train)
            )
            vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
            checkpoint = ctx.checkpoints.add(
                gx.Checkpoint(
                    name=f"validate_{name}",
                    validation_definitions=[vd],
                    actions=[],  # data docs: built once below (the action rebuilds the whole index per file)
                    result_format=RESULT_FORMAT,
                )
            )
            result = next(iter(checkpoint.run(batch_parameters={"dataframe": df}).run_results.values()))
            write_json(tmp / "results" / f"{name}.json", result.to_json_dict())
            lines = failure_lines(name, result)
            report.files[name] = {
                "path": str(path),
                "role": "train" if is_train else "benchmark",
                "rows": len(df),
                "success": bool(result.success),
                "failures": lines,
            }
            report.success &= bool(result.success)
        ctx.build_data_docs(site_names=[SITE])
        write_json(tmp / "validation.json", {"success": report.success, "files": report.files})
    if not report.success and raise_on_failure:
        raise ValidationFailed(report.lines, report.out_dir)
    return report
