"""Training sets and benchmarks: download, prepare to verl's parquet schema, validate.

Docs: docs/data.md. Command line: ``python -m riskrl.data {sources,download,prepare,validate}``.

Python::

    from riskrl.data import prepare, validate
    train = prepare("math", "data/prepared", split="train", local=["data/raw/math"])
    test = prepare("math500", "data/prepared", local=["math500.jsonl"])
    validate([train.path], [test.path], out_dir="data/validation", max_prompt_length=4096)
"""

from __future__ import annotations

from riskrl.data.loading import download as _download
from riskrl.data.prepare import PrepareResult, build_rows, prepare, problem_hashes, problem_of
from riskrl.data.schema import COLUMNS, PreparedRow, read_prepared
from riskrl.data.sources import SOURCES, DataError, RawProblem, Source, get_source, register_source
from riskrl.data.templates import TEMPLATES, normalize_problem, problem_hash, render
from riskrl.data.validation import ValidationFailed, ValidationReport, validate

__all__ = [
    "COLUMNS",
    "SOURCES",
    "TEMPLATES",
    "DataError",
    "PrepareResult",
    "PreparedRow",
    "RawProblem",
    "Source",
    "ValidationFailed",
    "ValidationReport",
    "build_rows",
    "download",
    "get_source",
    "normalize_problem",
    "prepare",
    "problem_hash",
    "problem_hashes",
    "problem_of",
    "read_prepared",
    "register_source",
    "render",
    "validate",
]


def download(source: str, out_dir, *, revision: str | None = None, cache_dir: str | None = None):
    """Save a Hub source (all configs and splits) to ``out_dir/<source>/``; returns that path."""
    return _download(get_source(source), out_dir, revision=revision, cache_dir=cache_dir)
