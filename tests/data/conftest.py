"""Fixtures for the data tests: every hub source's rows, in its real format, written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import (
    AIME24_ROWS,
    AIME25_I,
    AIME25_II,
    AMC23_ROWS,
    GSM8K_ROWS,
    LOCAL_ROWS,
    MATH500_ROWS,
    MATH_ROWS,
    dapo_rows,
    write_jsonl,
    write_parquet,
)


@pytest.fixture
def raw_files(tmp_path: Path) -> dict[str, list[Path]]:
    """``{source: [local files]}`` with every hub source's fixture in its real format."""
    d = tmp_path / "raw"
    d.mkdir()
    return {
        "dapo_math_17k": [write_parquet(d / "dapo.parquet", dapo_rows())],
        "math": [write_jsonl(d / "math_train.jsonl", MATH_ROWS)],
        "gsm8k": [write_parquet(d / "gsm8k_test.parquet", GSM8K_ROWS)],
        "aime_2024": [write_parquet(d / "aime24.parquet", AIME24_ROWS)],
        "aime_2025": [
            write_jsonl(d / "aime2025-I.jsonl", AIME25_I),
            write_jsonl(d / "aime2025-II.jsonl", AIME25_II),
        ],
        "amc23": [write_parquet(d / "amc23.parquet", AMC23_ROWS)],
        "math500": [write_jsonl(d / "math500.jsonl", MATH500_ROWS)],
        "local": [write_jsonl(d / "mine.jsonl", LOCAL_ROWS)],
    }
