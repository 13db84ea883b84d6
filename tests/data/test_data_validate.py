"""validate(): great-expectations suites pass on good files and name every crafted bad row."""

from __future__ import annotations

import copy
import json

import pytest
from data_fixtures import write_parquet

from riskrl.data import ValidationFailed, validate
from riskrl.data.templates import render

BENCH_PROBLEM = "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates."
MAX_LEN = 1000


def good_row(k: int, split: str = "train") -> dict:
    problem = f"What is ${k}+{k}$?"
    return {
        "data_source": "DigitalLearningGmbH/MATH-lighteval",
        "prompt": [{"role": "user", "content": render(problem, "boxed")}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": str(2 * k)},
        "extra_info": {"index": k, "split": split, "source_id": f"{split}:{k}", "problem": problem},
    }


def bench_rows() -> list[dict]:
    rows = [good_row(100 + k, "test") for k in range(2)]
    rows[1]["prompt"][0]["content"] = render(BENCH_PROBLEM, "boxed")
    rows[1]["extra_info"]["problem"] = BENCH_PROBLEM
    rows[1]["reward_model"]["ground_truth"] = "\\left( 3, \\frac{\\pi}{2} \\right)"
    return rows


def bad_train_rows() -> list[dict]:
    rows = [good_row(k) for k in range(18)]
    rows[1]["prompt"] = []
    rows[2]["prompt"][0]["role"] = "robot"
    rows[3]["prompt"][0]["content"] = render("", "boxed")
    rows[3]["extra_info"]["problem"] = ""
    rows[4]["prompt"][0]["content"] = render("x" * MAX_LEN, "boxed")
    rows[5]["reward_model"]["style"] = "model"
    rows[6]["reward_model"]["ground_truth"] = None
    rows[7]["reward_model"]["ground_truth"] = ""
    rows[8]["reward_model"]["ground_truth"] = "\\frac{1}{"
    rows[9]["extra_info"]["split"] = None
    rows[10]["extra_info"]["index"] = 0
    rows[11]["extra_info"]["problem"] = "WHAT is  $0 + 0$ ?"  # row 0's problem up to case and spacing
    rows[12]["extra_info"]["problem"] = BENCH_PROBLEM.upper()  # a benchmark problem in the training set
    rows[13]["data_source"] = ""
    rows[14]["data_source"] = None
    rows[15]["ability"] = None
    rows[16]["extra_info"]["index"] = None
    return rows


# (file, column, expectation, unexpected count, rows named in the examples)
EXPECTED = [
    ("bad_train", "prompt_check", "expect_column_values_to_be_in_set", 2, [1, 2]),
    ("bad_train", "problem", "expect_column_value_lengths_to_be_between", 1, [3]),
    ("bad_train", "prompt_length", "expect_column_values_to_be_between", 1, [4]),
    ("bad_train", "reward_model_check", "expect_column_values_to_be_in_set", 1, [5]),
    ("bad_train", "ground_truth", "expect_column_values_to_not_be_null", 1, [6]),
    ("bad_train", "ground_truth", "expect_column_value_lengths_to_be_between", 1, [7]),
    ("bad_train", "ground_truth_check", "expect_column_values_to_be_in_set", 1, [8]),
    ("bad_train", "extra_info_check", "expect_column_values_to_be_in_set", 2, [9, 16]),
    ("bad_train", "index", "expect_column_values_to_be_unique", 2, [0, 10]),
    ("bad_train", "index", "expect_column_values_to_not_be_null", 1, [16]),
    ("bad_train", "problem_key", "expect_column_values_to_be_unique", 2, [0, 11]),
    ("bad_train", "contamination_check", "expect_column_values_to_be_in_set", 1, [12]),
    ("bad_train", "data_source", "expect_column_value_lengths_to_be_between", 1, [13]),
    ("bad_train", "data_source", "expect_column_values_to_not_be_null", 1, [14]),
    ("bad_train", "ability", "expect_column_values_to_not_be_null", 1, [15]),
    ("bad_types", "ability", "expect_column_values_to_be_of_type", 2, [0, 1]),
    ("bad_types", "index", "expect_column_values_to_be_of_type", 2, [0, 1]),
]


@pytest.fixture(scope="module")
def bad_report(tmp_path_factory):
    d = tmp_path_factory.mktemp("validate_bad")
    bench = write_parquet(d / "bench.parquet", bench_rows())
    train = write_parquet(d / "bad_train.parquet", bad_train_rows())
    typed = [good_row(200 + k) for k in range(2)]
    for r in typed:
        r["ability"], r["extra_info"]["index"] = 1, str(r["extra_info"]["index"])
    types = write_parquet(d / "bad_types.parquet", typed)
    no_ability = [good_row(300 + k) for k in range(2)]
    for r in no_ability:
        del r["ability"]
    missing = write_parquet(d / "no_ability.parquet", no_ability)
    empty = write_parquet(d / "empty.parquet", [])
    report = validate(
        [train],
        [bench, types, missing, empty],
        out_dir=d / "out",
        max_prompt_length=MAX_LEN,
        raise_on_failure=False,
    )
    return report


@pytest.mark.parametrize(
    "name,column,expectation,count,rows", EXPECTED, ids=[f"{e[1]}-{e[2][7:]}" for e in EXPECTED]
)
def test_each_expectation_fails_on_its_crafted_row(bad_report, name, column, expectation, count, rows):
    f = bad_report.files[name]
    total = f["rows"]
    [line] = [
        x
        for x in f["failures"]
        if x.startswith(f"{name}: {column}: ") and x.split("; e.g.")[0].endswith(expectation)
    ]
    assert line.startswith(
        f"{name}: {column}: {count} of {total} rows fail {expectation}; e.g. row {rows[0]}: "
    )
    if len(rows) > 1:
        assert f", row {rows[1]}: " in line


def test_bad_files_fail_exactly_the_expected_expectations(bad_report):
    assert not bad_report.success
    assert bad_report.files["bench"]["success"]
    failed = {(name, line.split(": ")[1], line.split("; e.g.")[0].rsplit(" ", 1)[-1]) for name in bad_report.files
              for line in bad_report.files[name]["failures"] if "; e.g." in line}  # fmt: skip
    assert failed == {(e[0], e[1], e[2]) for e in EXPECTED}
    assert bad_report.files["no_ability"]["failures"] == ["no_ability: ability: column 'ability' is missing"]
    assert bad_report.files["empty"]["failures"] == [
        "empty: table: expect_table_row_count_to_be_between (observed 0)",
        *(
            f"empty: {c}: column {c!r} is missing"
            for c in ("data_source", "prompt", "ability", "reward_model", "extra_info")
        ),
    ]
    assert any("'unparseable: \\\\frac{1}{'" in x for x in bad_report.files["bad_train"]["failures"])


def test_failed_validation_keeps_its_report(bad_report):
    out = bad_report.out_dir
    summary = json.loads((out / "validation.json").read_text())
    assert summary["success"] is False
    assert summary["files"]["bad_train"]["failures"] == bad_report.files["bad_train"]["failures"]
    result = json.loads((out / "results" / "bad_train.json").read_text())
    assert result["success"] is False and result["statistics"]["unsuccessful_expectations"] == 15
    assert (out / "data_docs" / "index.html").is_file()
    assert list((out / "data_docs" / "validations").rglob("*.html"))


def test_good_files_pass_and_a_failure_raises(tmp_path):
    train = write_parquet(tmp_path / "train.parquet", [good_row(k) for k in range(5)])
    bench = write_parquet(tmp_path / "bench.parquet", bench_rows())
    report = validate([train], [bench], out_dir=tmp_path / "ok", max_prompt_length=MAX_LEN)
    assert report.success and report.lines == []
    assert {n: f["rows"] for n, f in report.files.items()} == {"train": 5, "bench": 2}
    assert json.loads((tmp_path / "ok" / "results" / "train.json").read_text())["success"] is True

    rows = [good_row(k) for k in range(5)] + [copy.deepcopy(bench_rows()[1])]  # contaminated
    rows[-1]["extra_info"]["index"] = 5
    bad = write_parquet(tmp_path / "contaminated.parquet", rows)
    with pytest.raises(ValidationFailed) as e:
        validate([bad], [bench], out_dir=tmp_path / "bad", max_prompt_length=MAX_LEN)
    [line] = e.value.lines
    assert line.startswith(
        "contaminated: contamination_check: 1 of 6 rows fail expect_column_values_to_be_in_set; "
        "e.g. row 5: 'in bench.parquet: Convert the point $(0,3)$"
    )
    assert (tmp_path / "bad" / "data_docs" / "index.html").is_file()
