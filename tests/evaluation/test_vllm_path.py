"""The vLLM evaluation path end to end on CPU: Ray with logical GPUs, a test-only stand-in for
vLLM's offline API (tests/evaluation/fake_vllm, transformers generation), a tiny HF model in
verl's checkpoint layout, real-format benchmark rows prepared by riskrl.data, math-verify scoring."""

from __future__ import annotations

import copy
import json
import os
import shutil
import string
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from riskrl.config import load_params
from riskrl.evaluation.sampling import VLLMSampler, problem_seed, run_evaluation, shard_bounds
from riskrl.pipeline import Paths

ROOT = Path(__file__).resolve().parents[2]
FAKE_VLLM = Path(__file__).resolve().parent / "fake_vllm"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# a word-level vocabulary whose words are whole answers: a random tiny model then answers
# right sometimes and wrong sometimes, so math-verify's scores are not all equal
ANSWER_WORDS = ["\\boxed{7}", "\\boxed{3}", "\\boxed{12}", "so "]

MATH500_ROWS = [  # HuggingFaceH4/MATH-500: problem, solution, answer, subject, level, unique_id
    {"problem": "What is $3+4$?", "solution": "$3+4=\\boxed{7}$", "answer": "7",
     "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1001.json"},
    {"problem": "Solve $2x = 6$ for $x$.", "solution": "$x=\\boxed{3}$", "answer": "3",
     "subject": "Algebra", "level": 1, "unique_id": "test/algebra/1002.json"},
    {"problem": "What is $\\frac{24}{2}$?", "solution": "$\\boxed{12}$", "answer": "12",
     "subject": "Prealgebra", "level": 2, "unique_id": "test/prealgebra/1003.json"},
]  # fmt: skip
AIME24_ROWS = [  # HuggingFaceH4/aime_2024 (split 'train'): id, problem, solution, answer, url, year
    {"id": 60, "problem": "Find the number of minutes, $7$.", "solution": "... $\\boxed{7}$", "answer": "7",
     "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1", "year": "2024"},
    {"id": 61, "problem": "Find $m+n$ where $m=1$ and $n=2$.", "solution": "...", "answer": "3",
     "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_10", "year": "2024"},
]  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def tiny_model(dest: Path, seed: int = 0) -> Path:
    """A 1-layer Qwen2 with a word-level tokenizer that has a chat template, saved for AutoModel."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    chars = [c for c in string.printable if c not in ANSWER_WORDS]  # prompts: one token per character
    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *ANSWER_WORDS, *chars])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # prompts: one piece per char
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                        pad_token="<pad>", unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    cfg = Qwen2Config(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():  # hidden state ~ (4, 0, ..., 0): next tokens are answer words or EOS, never chars
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, 0] = -5.0
        model.lm_head.weight[2, 0] = 0.7  # <eos>
        model.lm_head.weight[4:4 + len(ANSWER_WORDS), 0] = torch.tensor([1.0, 0.9, 0.8, 0.9])
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def engine_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start_ray(gpus: int, log: Path):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    pythonpath = os.pathsep.join([str(FAKE_VLLM), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {"PYTHONPATH": pythonpath, "FAKE_VLLM_LOG": str(log), "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    for attempt in range(3):  # the raylet can miss Ray's fixed 30 s start-up window on a loaded machine
        try:
            ray.init(address="local", num_cpus=2, num_gpus=gpus, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env})
            return ray
        except Exception as err:
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(err):
                raise
    return ray


def test_shard_bounds_and_problem_seeds():
    assert shard_bounds(5, 2) == [(0, 3), (3, 5)]
    assert shard_bounds(2, 8) == [(0, 1), (1, 2)]
    assert shard_bounds(7, 1) == [(0, 7)]
    for n, g in [(10, 3), (1, 1), (33, 8)]:
        b = shard_bounds(n, g)
        assert b[0][0] == 0 and b[-1][1] == n and all(x[1] == y[0] for x, y in zip(b, b[1:], strict=False))
        assert max(s - a for a, s in b) - min(s - a for a, s in b) <= 1
    seeds = [problem_seed(0, i) for i in range(1000)]
    assert len(set(seeds)) == 1000 and all(0 <= s < 2**31 for s in seeds)
    assert problem_seed(0, 5) == problem_seed(0, 5) != problem_seed(1, 5)


def test_engine_count_follows_gpus_and_tensor_parallel_size():
    assert VLLMSampler("m").num_engines(100, 8) == 8
    assert VLLMSampler("m", tensor_parallel_size=2).num_engines(100, 8) == 4
    assert VLLMSampler("m", tensor_parallel_size=2).num_engines(100, 3) == 1
    assert VLLMSampler("m").num_engines(3, 8) == 3  # never an engine without a problem
    assert VLLMSampler("m", engines=2).num_engines(100, 8) == 2
    assert VLLMSampler("m", tensor_parallel_size=4).llm_kwargs["tensor_parallel_size"] == 4
    with pytest.raises(ValueError, match="tensor_parallel_size must be >= 1"):
        VLLMSampler("m", tensor_parallel_size=0)


@pytest.fixture
def benchmarks(tmp_path):
    """MATH-500 and AIME 2024 rows in their Hub format, prepared to verl's schema by riskrl.data."""
    from riskrl.data import prepare

    out = tmp_path / "prepared"
    files = {}
    for source, rows in (("math500", MATH500_ROWS), ("aime_2024", AIME24_ROWS)):
        raw = write_jsonl(tmp_path / "raw" / f"{source}.jsonl", rows)
        files[f"{source}_test"] = str(prepare(source, out, split="test", local=[raw]).path)
    return files


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_samples_do_not_depend_on_sharding(tmp_path, benchmarks, monkeypatch):
    """1 vs 2 logical GPUs: one engine vs two (each its own Ray task and GPU), identical tables."""
    model = tiny_model(tmp_path / "model")
    monkeypatch.syspath_prepend(str(FAKE_VLLM))  # the driver checks that vllm is importable
    kw = {"n": 6, "temperature": 1.0, "top_p": 0.95, "max_tokens": 3, "seed": 5}
    tables, logs = {}, {}
    for gpus in (2, 1):
        log = tmp_path / f"engines{gpus}.jsonl"
        ray = start_ray(gpus, log)
        try:
            tables[gpus] = run_evaluation(VLLMSampler(str(model)), benchmarks, **kw)
        finally:
            ray.shutdown()
        logs[gpus] = engine_log(log)
    engines = {g: [e for e in logs[g] if e["event"] == "engine"] for g in logs}
    # one engine per GPU for both benchmarks, each on its own GPU; each engine got its shard only
    assert len(engines[1]) == 1 and len(engines[2]) == 2
    assert {e["gpus"] for e in engines[2]} == {"0", "1"} and {e["gpus"] for e in engines[1]} == {"0"}
    gen = {g: sorted(e["prompts"] for e in logs[g] if e["event"] == "generate") for g in logs}
    assert gen == {2: [2, 3], 1: [5]}  # MATH-500's 3 problems and AIME's 2, as 3 + 2 or all 5 at once
    assert all(e["kwargs"]["tensor_parallel_size"] == 1 for e in engines[2])
    pd.testing.assert_frame_equal(tables[1], tables[2])
    t = tables[2]
    assert len(t) == (len(MATH500_ROWS) + len(AIME24_ROWS)) * kw["n"]
    assert t["response"].nunique() > 1 and 0 < t["score"].mean() < 1


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_evaluate_stage_with_backend_verl_end_to_end(tmp_path, monkeypatch):
    """The evaluate stages and the report on verl checkpoints, sampled by vLLM engines on Ray GPUs."""
    from riskrl.pipeline.data_steps import prepare
    from riskrl.pipeline.eval_steps import evaluate, evaluate_base
    from riskrl.pipeline.report_steps import report
    from riskrl.rewards import compute_score

    monkeypatch.chdir(tmp_path)
    paths = Paths(tmp_path)
    d = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    raw = {s: write_jsonl(tmp_path / "fixtures" / f"{s}.jsonl", r)
           for s, r in (("math500", MATH500_ROWS), ("aime_2024", AIME24_ROWS))}
    d["backend"] = "verl"
    train = d["train"]  # one trained policy (+ the base) keeps the test short; either schema of train:
    if "variants" in train:
        train["variants"] = dict(list(train["variants"].items())[:1])
    else:
        train["estimators"] = train["estimators"][:1]
    d["data"]["train"] = [{"source": "local", "split": "train", "local": [raw["math500"]], "name": "train_fixture"}]
    d["data"]["benchmarks"] = [{"source": "math500", "local": [raw["math500"]]},
                               {"source": "aime_2024", "local": [raw["aime_2024"]]}]
    d["evaluate"].update(n=4, max_tokens=3, n_boot=100, seed=0, temperature=1.0, top_p=1.0)
    d["report"].update(k_high=4, n_boot=100)
    d["cluster"].update(local_cpus=2)
    d["verl"]["model_path"] = str(tiny_model(tmp_path / "base_model", seed=1))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(d))
    p = load_params(tmp_path / "params.yaml")
    prepare(p, paths)
    estimators = list(getattr(p.train, "estimators", None) or p.train.variants)
    model = tiny_model(tmp_path / "trained")
    for e in estimators:  # verl's layout; step 10 is the last one (sorted by number, not name)
        run = paths.runs(e) / "lr1e-06_s0"
        for step in (2, 10):
            shutil.copytree(model, run / f"global_step_{step}" / "actor" / "huggingface")
        (run / "run.json").write_text(json.dumps({"estimator": e, "lr": 1e-6, "seed": 0, "name": f"{e}-lr1e-06-s0"}))

    log = tmp_path / "engines.jsonl"
    ray = start_ray(2, log)
    try:
        for e in estimators:
            evaluate(p, paths, e, progress=False)
        evaluate_base(p, paths, progress=False)
    finally:
        ray.shutdown()
    report(p, paths)

    engines = [x for x in engine_log(log) if x["event"] == "engine"]
    models = {x["model"] for x in engines}
    assert models == {str(paths.runs(e) / "lr1e-06_s0" / "global_step_10" / "actor" / "huggingface")
                      for e in estimators} | {d["verl"]["model_path"]}
    assert {x["gpus"] for x in engines} == {"0", "1"}  # two engines per model: both GPUs used
    assert len(engines) == 2 * len(models)  # each started once for both benchmarks
    prepared = {n: pd.read_parquet(paths.prepared / f"{n}.parquet") for n in ("math500_test", "aime_2024_test")}
    for e in estimators:
        out = paths.evals(e) / "lr1e-06_s0"
        metrics = json.loads((out / "metrics.json").read_text())
        for name, df in prepared.items():
            samples = pd.read_parquet(out / "samples" / f"{name}.parquet")
            assert len(samples) == len(df) * 4
            truth = {str(r["extra_info"]["index"]): (r["data_source"], r["reward_model"]["ground_truth"])
                     for _, r in df.iterrows()}
            rescored = [float(compute_score(truth[pid][0], text, truth[pid][1], None)["acc"])
                        for pid, text in zip(samples["problem_id"], samples["response"], strict=True)]
            assert samples["score"].tolist() == rescored  # math-verify's verdicts, sample by sample
            pass1 = samples.groupby("problem_id")["score"].mean().mean()
            assert metrics[name]["pass@1"] == pytest.approx(pass1, abs=1e-6)  # metrics.json rounds to 6 digits
        summary = json.loads(paths.eval_metrics(e).read_text())
        assert summary["runs"]["lr1e-06_s0"]["math500_test/pass@1"] == pytest.approx(metrics["math500_test"]["pass@1"])
    all_scores = pd.concat(pd.read_parquet(f) for f in paths.evals(estimators[0]).glob("*/samples/*.parquet"))
    assert 0 < all_scores["score"].mean() < 1  # some right, some wrong: the scorer decided
    text = (paths.reports / "report.md").read_text()
    assert all(e in text for e in estimators) and "math500_test" in text
    assert json.loads(paths.study_metrics.read_text())
