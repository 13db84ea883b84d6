import numpy as np
import pandas as pd
import pytest

from riskrl.embedded.task import (
    DATA_SOURCE,
    SPLITS,
    TaskConfig,
    check_answer,
    cut_response,
    generate_rows,
    split_problems,
    write_split,
)


def test_checker_is_exact():
    assert check_answer("05535", "05535")
    assert check_answer("05535<eos>junk", "05535")
    assert check_answer("05535 trailing", "05535")
    assert check_answer("05535\n", "05535")
    assert not check_answer("5535", "05535")  # fixed width: the leading zero is part of the answer
    assert not check_answer("055350", "05535")
    assert not check_answer("", "05535")
    assert not check_answer(" ", "05535")
    assert cut_response("12<eos>34") == "12"


@pytest.mark.parametrize("a_digits,b_digits", [(3, 1), (3, 2)])
def test_rows_follow_the_prepared_schema_and_are_correct(a_digits, b_digits):
    rows = generate_rows(50, 3, "train", a_digits=a_digits, b_digits=b_digits)
    assert len(rows) == 50
    for r in rows:
        assert r["data_source"] == DATA_SOURCE and r["ability"] == "arithmetic"
        (msg,) = r["prompt"]
        assert msg["role"] == "user"
        prob = msg["content"]
        assert (
            prob == r["extra_info"]["problem"] and prob.endswith("=") and len(prob) == a_digits + b_digits + 2
        )
        a, b = prob[:-1].split("*")
        assert len(a) == a_digits and len(b) == b_digits
        width = a_digits + b_digits
        assert r["reward_model"] == {"style": "rule", "ground_truth": f"{int(a) * int(b):0{width}d}"}
        assert r["extra_info"]["source_id"] == prob[:-1] and r["extra_info"]["split"] == "train"
    assert [r["extra_info"]["index"] for r in rows] == list(range(50))
    assert len({r["extra_info"]["problem"] for r in rows}) == 50  # distinct problems


def test_fixed_width_formats():
    from riskrl.embedded.task import format_answer, format_problem

    cfg = TaskConfig()  # 3 x 1 digits
    assert format_problem(123, 4, cfg) == "123*4=" and format_answer(123, 4, cfg) == "0492"
    assert format_problem(7, 3, cfg) == "007*3=" and format_answer(7, 3, cfg) == "0021"
    cfg = TaskConfig(b_digits=2)
    assert format_problem(123, 45, cfg) == "123*45=" and format_answer(123, 45, cfg) == "05535"
    assert format_problem(7, 3, cfg) == "007*03=" and format_answer(7, 3, cfg) == "00021"
    assert format_answer(123, 45, TaskConfig(b_digits=2, answer_order="lsb")) == "53550"


@pytest.mark.parametrize("b_digits", [1, 2])
def test_splits_partition_the_problem_space(b_digits):
    cfg = TaskConfig(b_digits=b_digits)
    total = 999 * (10**b_digits - 1)
    sets = {s: {tuple(p) for p in split_problems(cfg, s)} for s in SPLITS}
    assert (
        not (sets["train"] & sets["test"])
        and not (sets["train"] & sets["val"])
        and not (sets["val"] & sets["test"])
    )
    assert sum(map(len, sets.values())) == total
    assert 0.08 < len(sets["test"]) / total < 0.12 and 0.08 < len(sets["val"]) / total < 0.12
    # whatever the sampling seeds, held-out rows never appear in train
    train = {r["extra_info"]["problem"] for r in generate_rows(5000, 1, "train", b_digits=b_digits)}
    test = {r["extra_info"]["problem"] for r in generate_rows(500, 2, "test", b_digits=b_digits)}
    assert not train & test
    # another partition seed gives another partition
    other = {tuple(p) for p in split_problems(TaskConfig(b_digits=b_digits, partition_seed=1), "test")}
    assert other != sets["test"]


def test_seeded_and_difficulty_from_params():
    assert generate_rows(20, 5, "test") == generate_rows(20, 5, "test")
    assert generate_rows(20, 5, "test") != generate_rows(20, 6, "test")
    rows = generate_rows(10, 0, "train", a_digits=2, b_digits=1)
    assert all(len(r["reward_model"]["ground_truth"]) == 3 for r in rows)

    # "digits" sampling: short first operands are far more common than under uniform values
    def first_ops(**kw):
        return np.array(
            [int(r["extra_info"]["source_id"].split("*")[0]) for r in generate_rows(3000, 0, "train", **kw)]
        )

    assert np.mean(first_ops(b_digits=2, operand_sampling="digits") >= 100) < 0.7
    assert np.mean(first_ops(b_digits=2) >= 100) > 0.85  # uniform over values: 90% have 3 digits


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        generate_rows(5, 0, "dev")
    with pytest.raises(ValueError, match="unknown key"):
        generate_rows(5, 0, "train", digits=3)
    with pytest.raises(ValueError, match="n=100000"):
        generate_rows(100000, 0, "test")
    with pytest.raises(ValueError, match="answer_order"):
        TaskConfig(answer_order="rtl")
    with pytest.raises(ValueError, match="operand_sampling"):
        TaskConfig(operand_sampling="log")


def test_write_split_roundtrip(tmp_path):
    p = tmp_path / "t.parquet"
    write_split(p, 12, 0, "val")
    df = pd.read_parquet(p)
    assert len(df) == 12 and set(df.columns) == {
        "data_source",
        "prompt",
        "ability",
        "reward_model",
        "extra_info",
    }
    assert (
        df.iloc[0]["reward_model"]["ground_truth"]
        == generate_rows(12, 0, "val")[0]["reward_model"]["ground_truth"]
    )
