"""prepare(): every source from fixtures in its real format, the Hub path, offline errors, download."""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pytest
from data_fixtures import AIME25_I, AIME25_II, DAPO_PREFIX, DAPO_SUFFIX, MATH500_ROWS, write_jsonl

from riskrl.data import DataError, prepare, read_prepared
from riskrl.data.templates import BOXED_SUFFIX, strip_template

CASES = [
    # source, split, data_source, ground truths (in order), first source_id, dropped
    ("dapo_math_17k", "train", "BytedTsinghua-SIA/DAPO-Math-17k", ["34", "4", "56"], "9a1c-0-0", {"duplicate": 6}),
    ("math", "train", "DigitalLearningGmbH/MATH-lighteval", ["\\frac{3}{4}", "2", "(-\\infty, 3]"], "train:0", {"no_answer": 1}),
    ("gsm8k", "test", "openai/gsm8k", ["7", "1500"], "test:0", {}),
    ("aime_2024", "test", "HuggingFaceH4/aime_2024", ["204", "113"], "60", {}),
    ("aime_2025", "test", "opencompass/AIME2025", ["70", "468"], "test:0", {}),
    ("amc23", "test", "math-ai/amc23", ["27", "36"], "0", {}),
    ("math500", "test", "HuggingFaceH4/MATH-500", [r["answer"] for r in MATH500_ROWS], "test/precalculus/807.json", {}),
    ("local", "test", "local", ["9", "2"], "test:0", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    "source,split,data_source,answers,first_id,dropped", CASES, ids=[c[0] for c in CASES]
)
def test_prepare_each_source(tmp_path, raw_files, source, split, data_source, answers, first_id, dropped):
    res = prepare(source, tmp_path / "out", split=split, local=raw_files[source])
    assert res.path == tmp_path / "out" / f"{source}_{split}.parquet"
    rows = read_prepared(res.path)  # every row passes the pydantic schema
    assert [r.reward_model.ground_truth for r in rows] == answers
    assert {r.data_source for r in rows} == {data_source}
    assert [r.extra_info.index for r in rows] == list(range(len(answers)))
    assert {r.extra_info.split for r in rows} == {split}
    assert rows[0].extra_info.source_id == first_id
    content = rows[0].prompt[-1].content
    if source == "dapo_math_17k":  # DAPO's own "Answer:" prompt, problem recovered from it
        assert content == DAPO_PREFIX + "Find $2^5+2$." + DAPO_SUFFIX
        assert rows[0].extra_info.problem == "Find $2^5+2$."
    else:
        assert content.endswith(" " + BOXED_SUFFIX)
        assert strip_template(content) == rows[0].extra_info.problem
    summary = json.loads(res.summary_path.read_text())
    assert summary["rows"] == len(answers)
    assert {k: v for k, v in summary["dropped"].items() if v} == dropped


def test_prepare_keeps_source_metadata_and_template_choice(tmp_path, raw_files):
    res = prepare("math500", tmp_path, local=raw_files["math500"], template="dapo", system_prompt="Be brief.")
    row = read_prepared(res.path)[1]
    assert [m.role for m in row.prompt] == ["system", "user"]
    assert row.prompt[1].content == DAPO_PREFIX + MATH500_ROWS[1]["problem"] + DAPO_SUFFIX
    assert row.extra_info.model_extra["subject"] == "Algebra"
    assert row.extra_info.model_extra["level"] == "3"


def test_prepare_dedup_limit_and_decontaminate(tmp_path, raw_files):
    bench = prepare("math500", tmp_path, local=raw_files["math500"])  # contains "What is $1+1$?"
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"problem": "What is  $1 + 1$?", "answer": "2"},  # a MATH-500 problem up to spacing
            {"problem": "What is 2+3?", "answer": "5"},
            {"problem": "WHAT IS 2+3?", "answer": "6"},  # duplicate with a different answer
            {"problem": "What is 4+4?", "answer": "8"},
            {"problem": "What is 5+5?", "answer": "10"},
            {"problem": "   ", "answer": "1"},
        ],
    )
    res = prepare("local", tmp_path, split="train", local=[train], decontaminate=[bench.path], limit=2)
    assert [r.reward_model.ground_truth for r in read_prepared(res.path)] == ["5", "8"]
    assert res.summary["dropped"] == {
        "no_answer": 0, "empty_problem": 1, "duplicate": 0, "conflicting_duplicate": 1, "contaminated": 1, "over_limit": 1,
    }  # fmt: skip
    assert sum(res.summary["dropped"].values()) == res.summary["read"] - res.summary["rows"]  # one count per row


def test_prepare_is_deterministic(tmp_path, raw_files):
    a = prepare("dapo_math_17k", tmp_path / "a", local=raw_files["dapo_math_17k"])
    b = prepare("dapo_math_17k", tmp_path / "b", local=raw_files["dapo_math_17k"])
    assert a.path.read_bytes() == b.path.read_bytes()


def test_prepare_from_hub_loads_every_config_at_the_pinned_revision(tmp_path, monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, *, split=None, revision=None, cache_dir=None, **kw):
        calls.append((path, name, split, revision))
        return datasets.Dataset.from_list(AIME25_I if name == "AIME2025-I" else AIME25_II)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    res = prepare("aime_2025", tmp_path, revision="abc123")
    assert calls == [
        ("opencompass/AIME2025", "AIME2025-I", "test", "abc123"),
        ("opencompass/AIME2025", "AIME2025-II", "test", "abc123"),
    ]
    assert res.summary["origin"] == "hf://opencompass/AIME2025@abc123"
    assert [r.reward_model.ground_truth for r in read_prepared(res.path)] == ["70", "468"]


def test_hub_unreachable_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    def offline(*a, **kw):
        raise ConnectionError("Couldn't reach 'HuggingFaceH4/MATH-500' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as e:
        prepare("math500", tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg
    assert "HuggingFaceH4/MATH-500" in msg and "--local" in msg and "OfflineModeIsEnabled" in msg
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_download_then_prepare_from_the_copy(tmp_path, monkeypatch):
    def fake_load_dataset(path, name=None, *, revision=None, cache_dir=None, **kw):
        rows = AIME25_I if name == "AIME2025-I" else AIME25_II
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    from riskrl.data import download

    dest = download("aime_2025", tmp_path / "raw", revision="abc123")
    info = json.loads((dest / "source.json").read_text())
    assert info["configs"] == ["AIME2025-I", "AIME2025-II"] and info["revision"] == "abc123"
    monkeypatch.undo()  # prepare must not touch the Hub now
    res = prepare("aime_2025", tmp_path / "prepared", local=[dest])
    assert [r.reward_model.ground_truth for r in read_prepared(res.path)] == ["70", "468"]


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"source": "nope"}, "unknown source 'nope'; known: dapo_math_17k, math,"),
        ({"source": "math500", "template": "fancy"}, "unknown template 'fancy'; known: dapo, boxed, raw"),
        ({"source": "math500", "split": "train"}, "source 'math500' has no split 'train'; known: test"),
        (
            {"source": "math500", "local": ["/no/such/file.jsonl"]},
            "local copy not found: /no/such/file.jsonl",
        ),
        ({"source": "local"}, "source 'local' reads local files: pass --local PATH"),
        ({"source": "synthetic"}, "source 'synthetic' needs n"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, kwargs, needle):
    with pytest.raises(DataError, match=None) as e:
        prepare(out_dir=tmp_path, **kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_missing_column_names_the_columns(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "What is 1+1?", "answer": "2"}])
    with pytest.raises(
        DataError, match=r"row 0 of math500 has no column 'problem' or 'question' \(columns: answer, text\)"
    ):
        prepare("math500", tmp_path / "out", local=[bad])
    assert not (tmp_path / "out").exists()


def test_local_reads_prepared_schema_files_too(tmp_path, raw_files):
    first = prepare("math500", tmp_path / "a", local=raw_files["math500"])
    again = prepare(
        "local", tmp_path / "b", split="test", local=[first.path], data_source="mine/v1", template="raw"
    )
    rows = read_prepared(again.path)
    assert [r.reward_model.ground_truth for r in rows] == [r["answer"] for r in MATH500_ROWS]
    assert rows[0].prompt[0].content == MATH500_ROWS[0]["problem"] and rows[0].data_source == "mine/v1"


def test_synthetic_source_uses_the_embedded_task(tmp_path):
    res = prepare(
        "synthetic", tmp_path, split="train", n=16, seed=0, difficulty={"a_digits": 2, "b_digits": 1}
    )
    df = pd.read_parquet(res.path)
    assert len(df) == 16 and set(df["data_source"]) == {"riskrl/multiply"}
    from riskrl.rewards import compute_score

    row = read_prepared(res.path)[0]
    gt = row.reward_model.ground_truth
    assert compute_score(row.data_source, gt + "<eos>", gt)["score"] == 1.0


def test_read_prepared_names_the_bad_row(tmp_path, raw_files):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = pq.read_table(prepare("amc23", tmp_path, local=raw_files["amc23"]).path).to_pylist()
    for r in rows:  # a str index (a column type must be uniform in parquet)
        r["extra_info"]["index"] = str(r["extra_info"]["index"])
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(
        ValueError,
        match=r"bad.parquet: row 0 is not a prepared row: extra_info.index Input should be a valid integer",
    ):
        read_prepared(tmp_path / "bad.parquet")
