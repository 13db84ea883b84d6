"""The commands and options the README and docs/ promise, run as documented (the fast ones; the
ones that start Ray, verl or DVC are in tests/pipeline/test_documented_pipeline.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from riskrl.embedded.model import ModelConfig, init_model
from riskrl.embedded.task import write_split

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=32,
                   max_positions=16)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return init_model(TINY, tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "multiply_test.parquet"
    write_split(path, 10, 1, "test", a_digits=1, b_digits=1, heldout_frac=0.2)
    return path


# --- python -m riskrl.evaluation sample / metrics --------------------------------------------

def test_evaluation_sample_then_metrics_cli(tiny_model, bench, tmp_path, capsys):
    from riskrl.evaluation.__main__ import main

    out = tmp_path / "samples"
    argv = ["sample", "--engine", "embedded", "--model", str(tiny_model), "--benchmark", f"mult={bench}",
            "--n", "3", "--max-tokens", "3", "--max-problems", "4", "--out", str(out)]
    assert main(argv) == 0
    assert f"wrote 12 samples for 1 benchmark(s) to {out}" in capsys.readouterr().out
    df = pd.read_parquet(out / "mult.parquet")
    assert len(df) == 12 and df["problem_id"].nunique() == 4  # --max-problems: the first 4 problems
    first = pd.read_parquet(bench).iloc[:4]
    assert list(dict.fromkeys(df["problem_id"])) == [str(e["index"]) for e in first["extra_info"]]
    assert set(df["score"].unique()) <= {0.0, 1.0}
    assert main(["metrics", "--samples", str(out), "--out-metrics", str(tmp_path / "m.json"), "--n-boot", "10"]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    expected = df.groupby("problem_id")["score"].mean().mean()  # pass@1 = mean correctness
    assert metrics["mult"]["pass@1"] == pytest.approx(expected, abs=1e-12)
    # a bad --benchmark is one argparse line; an unknown engine too
    with pytest.raises(SystemExit):
        main(["sample", "--engine", "embedded", "--model", "m", "--benchmark", "nopath", "--out", "o"])
    assert "--benchmark needs NAME=PATH; got 'nopath'" in capsys.readouterr().err


# --- python -m riskrl.data sources / download / validate --tokenizer, register_source --------

def test_data_sources_lists_the_registry(capsys):
    import riskrl.data as data
    from riskrl.data.__main__ import main

    assert main(["sources"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == list(data.SOURCES)
    assert {"math500", "gsm8k", "aime_2024", "local", "synthetic"} <= set(data.SOURCES)
    math500 = next(ln for ln in lines if ln.startswith("math500 "))
    assert "HuggingFaceH4/MATH-500" in math500 and "splits=test" in math500


@pytest.mark.slow  # a fresh interpreter importing datasets (offline flags are read at import)
def test_data_download_offline_is_one_line_and_writes_nothing(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    r = subprocess.run([sys.executable, "-m", "riskrl.data", "download", "--source", "gsm8k", "--out",
                        str(tmp_path / "raw")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    [line] = [x for x in r.stderr.splitlines() if x.strip()]
    assert line.startswith("error: ") and "openai/gsm8k" in line and "--local" in line, line
    assert not (tmp_path / "raw").exists()


def word_tokenizer(path: Path) -> Path:
    """A local tokenizer with one token per word or punctuation run (no Hub access)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(path)
    return path


def test_validate_measures_prompts_in_tokens_with_tokenizer(tmp_path, capsys):
    from transformers import AutoTokenizer

    from riskrl.data import read_prepared
    from riskrl.data.__main__ import main

    problems = [{"problem": "What is 12 times 3 plus 4 minus 5 over 6?", "answer": "37.17"},
                {"problem": "Compute 2 plus 2.", "answer": "4"}]
    raw = tmp_path / "bench.jsonl"
    raw.write_text("".join(json.dumps(p) + "\n" for p in problems))
    prep = tmp_path / "prep"
    assert main(["prepare", "--source", "local", "--split", "test", "--local", str(raw), "--out", str(prep)]) == 0
    [path] = sorted(prep.glob("*.parquet"))
    tok_dir = word_tokenizer(tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(tok_dir)
    prompts = [r.prompt[-1].content for r in read_prepared(path)]
    tokens = [len(tok(p)["input_ids"]) for p in prompts]
    chars = [len(p) for p in prompts]
    assert max(tokens) < min(chars)  # so the two units give different verdicts
    capsys.readouterr()
    args = ["validate", "--benchmarks", str(path), "--tokenizer", str(tok_dir)]
    assert main([*args, "--out", str(tmp_path / "v1"), "--max-prompt-length", str(max(tokens))]) == 0
    # the same bound in characters fails
    assert main(["validate", "--benchmarks", str(path), "--out", str(tmp_path / "v2"),
                 "--max-prompt-length", str(max(tokens))]) == 1
    capsys.readouterr()
    # one token less: the longest prompt fails, reported with its token count
    assert main([*args, "--out", str(tmp_path / "v3"), "--max-prompt-length", str(max(tokens) - 1)]) == 1
    err = capsys.readouterr().err
    assert f"row {tokens.index(max(tokens))}: {max(tokens)}" in err and "prompt_length" in err


def test_register_source_makes_a_new_source_preparable(tmp_path):
    import riskrl.data as data
    from riskrl.data.sources import RawProblem, Source, register_source

    def adapter(row, fallback_id):
        return RawProblem(problem=row["q"], answer=str(row["a"]), source_id=row.get("id", fallback_id))

    src = Source(name="my_bench", hub_id="me/my-bench", splits={"test": "test"}, adapter=adapter,
                 description="a test source")
    try:
        assert register_source(src) is src and data.SOURCES["my_bench"] is src
        with pytest.raises(ValueError, match="source 'my_bench' is already registered"):
            register_source(src)
        raw = tmp_path / "mine.jsonl"
        raw.write_text(json.dumps({"q": "What is 6 times 7?", "a": 42, "id": "q1"}) + "\n")
        res = data.prepare("my_bench", tmp_path / "out", local=[raw])
        [row] = data.read_prepared(res.path)
        assert row.data_source == "me/my-bench" and row.reward_model.ground_truth == "42"
        assert "What is 6 times 7?" in row.prompt[-1].content
    finally:
        data.SOURCES.pop("my_bench", None)
    with pytest.raises(data.DataError, match="unknown source 'my_bench'"):
        data.prepare("my_bench", tmp_path / "out2", local=[raw])


# --- params: list-valued overrides, evaluate.max_problems, the verl run pick -----------------

def test_list_valued_override_is_a_list_of_floats():
    from riskrl.config import Params, set_overrides
    from riskrl.pipeline.paths import run_name

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = Params(**set_overrides(raw, ["train.lrs=[3e-5]", "train.seeds=[4, 5]"]))
    assert p.train.lrs == [3e-5] and isinstance(p.train.lrs[0], float)
    assert p.train.seeds == [4, 5]
    assert {(lr, s) for _, lr, s in p.train.grid()} == {(3e-5, 4), (3e-5, 5)}
    assert run_name(3e-5, 4) == "lr3e-05_s4"


def test_evaluate_max_problems_limits_each_benchmark(tiny_model, bench, tmp_path):
    from riskrl.config import Params, set_overrides
    from riskrl.pipeline.eval_steps import _evaluate_one

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    overrides = ["evaluate.max_problems=3", "evaluate.n=2", "evaluate.n_boot=100", "report.k_high=2"]
    ev = Params(**set_overrides(raw, overrides)).evaluate
    out = tmp_path / "eval"
    _evaluate_one(str(tiny_model), str(out), None, {"multiply_test": str(bench)}, ev.model_dump(), "embedded", 1,
                  {"batch_size": ev.batch_size})
    df = pd.read_parquet(out / "samples" / "multiply_test.parquet")
    assert df["problem_id"].nunique() == 3 and len(df) == 6
    assert json.loads((out / "metrics.json").read_text())["multiply_test"]["num_problems"] == 3
    with pytest.raises(ValueError, match="evaluate.max_problems"):
        Params(**set_overrides(raw, ["evaluate.max_problems=0"]))


def test_evaluate_stage_picks_the_largest_verl_step(tmp_path, tiny_model):
    """backend: verl: each run's model is global_step_<largest N>/actor/huggingface (by number)."""
    import shutil

    from riskrl.config import Params, set_overrides
    from riskrl.pipeline.eval_steps import _model_dirs
    from riskrl.pipeline.paths import Paths

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = Params(**set_overrides(raw, ["backend=verl"]))
    run = tmp_path / "runs" / "riskpo" / "lr1e-06_s0"
    for step in (2, 9, 10):
        shutil.copytree(tiny_model, run / f"global_step_{step}" / "actor" / "huggingface")
    (run / "global_step_11" / "actor").mkdir(parents=True)  # no huggingface export: not a model
    [(got_run, model)] = _model_dirs(p, Paths(tmp_path), "riskpo")
    assert got_run == run and model == run / "global_step_10" / "actor" / "huggingface"
