"""The command line: prepare + validate on fixtures, bad rows stop it with clear lines, offline Hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_fixtures import write_jsonl

from riskrl.data.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow  # 5-13 s (subprocesses, a size-limited folder): out of the fast subset
def test_prepare_and_validate_from_the_command_line(tmp_path, raw_files, capsys):
    out, val = tmp_path / "prepared", tmp_path / "validation"
    assert (
        main(
            [
                "prepare",
                "--source",
                "math",
                "--split",
                "train",
                "--local",
                *map(str, raw_files["math"]),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (
        main(["prepare", "--source", "math500", "--local", str(raw_files["math500"][0]), "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert f"prepared math/train: 3 rows -> {out / 'math_train.parquet'} (dropped: 1 no_answer)" in printed
    args = [
        "validate",
        "--train",
        str(out / "math_train.parquet"),
        "--benchmarks",
        str(out / "math500_test.parquet"),
    ]
    assert main([*args, "--out", str(val), "--max-prompt-length", "2000"]) == 0
    assert "validated 2 file(s), 6 rows: all expectations met" in capsys.readouterr().out
    assert json.loads((val / "validation.json").read_text())["success"] is True

    # a bad row stops validation: one stderr line per failed expectation, report kept
    assert main([*args, "--out", str(val), "--max-prompt-length", "100"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[0]
        == "math_train: prompt_length: 2 of 3 rows fail expect_column_values_to_be_between; e.g. row 0: 104, row 2: 105"
    )
    assert all(line.split(": ")[1] == "prompt_length" for line in err[:-1])
    assert err[-1] == f"error: {len(err) - 1} failed expectation(s); see {val / 'data_docs' / 'index.html'}"
    assert (val / "data_docs" / "index.html").is_file()


@pytest.mark.slow  # a fresh interpreter importing great-expectations
def test_cli_subprocess_exits_1_with_one_line_per_failed_expectation(tmp_path):
    bench = write_jsonl(tmp_path / "aime.jsonl", [{"problem": "What is $2+2$?", "answer": "4"}])
    bad = write_jsonl(tmp_path / "train.jsonl", [{"problem": "What is $2+2$?", "answer": "\\frac{1}{"}])
    p = str(tmp_path / "p")
    assert main(["prepare", "--source", "aime_2024", "--local", str(bench), "--out", p]) == 0
    assert main(["prepare", "--source", "local", "--split", "train", "--local", str(bad), "--out", p]) == 0
    r = run(
        "-m", "riskrl.data", "validate", "--train", f"{p}/local_train.parquet",
        "--benchmarks", f"{p}/aime_2024_test.parquet", "--out", str(tmp_path / "v"),
    )  # fmt: skip
    assert r.returncode == 1
    lines = [x for x in r.stderr.splitlines() if x.startswith("local_train: ")]
    assert len(lines) == 2, r.stderr
    assert (
        "ground_truth_check: 1 of 1 rows fail expect_column_values_to_be_in_set; e.g. row 0: 'unparseable"
        in lines[0]
    )
    assert "contamination_check: 1 of 1 rows fail" in lines[1] and "in aime_2024_test.parquet" in lines[1]
    assert (tmp_path / "v" / "validation.json").is_file()


@pytest.mark.slow  # a fresh interpreter importing datasets
def test_offline_hub_is_one_clear_line_and_writes_nothing(tmp_path):
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    r = run(
        "-m", "riskrl.data", "prepare", "--source", "math500", "--out", str(tmp_path / "out"), env=offline
    )
    assert r.returncode == 1
    [line] = [x for x in r.stderr.splitlines() if x.strip()]
    assert line.startswith("error: cannot load HuggingFaceH4/MATH-500 split test from the Hugging Face Hub")
    assert "--local" in line
    assert not (tmp_path / "out").exists()
