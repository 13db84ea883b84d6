"""The Sampler interface: render_prompt, run_evaluation with a fake engine, the vLLM sampler's errors."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pandas as pd
import pytest

from riskrl.evaluation import sampling
from riskrl.evaluation.sampling import (
    VLLM_MISSING,
    Sampler,
    VLLMSampler,
    get_sampler,
    register_sampler,
    render_prompt,
    run_evaluation,
)

NO_VLLM = importlib.util.find_spec("vllm") is None


class TemplateTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<|{m['role']}|>{m['content']}" for m in messages) + "<|assistant|>"


class EchoSampler:
    """Answers '<prompt>=<sample index>' deterministically; counts calls."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def sample(self, prompts, *, n, temperature, top_p, max_tokens, seed):
        self.calls.append(
            {"n": n, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed}
        )
        texts = [render_prompt(p, None) for p in prompts]
        return [[(f"{t}={j}", len(t) + j) for j in range(n)] for t in texts]


def prepared(path, questions: list[str], index_base: int = 100) -> str:
    """A prepared benchmark parquet in verl RLHFDataset form."""
    df = pd.DataFrame(
        {
            "data_source": ["toy"] * len(questions),
            "prompt": [[{"role": "user", "content": q}] for q in questions],
            "ability": ["math"] * len(questions),
            "reward_model": [{"style": "rule", "ground_truth": q[-1]} for q in questions],
            "extra_info": [{"index": index_base + i, "split": "test"} for i in range(len(questions))],
        }
    )
    df.to_parquet(path, index=False)
    return str(path)


def score_last_digit(data_source, solution_str, ground_truth, extra_info):
    """Correct when the sample index (last char) equals the ground truth digit."""
    assert data_source == "toy" and extra_info["split"] == "test"
    pred = solution_str.rsplit("=", 1)[1]
    return {"score": 5.0, "acc": pred == ground_truth, "pred": pred}


def test_render_prompt():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1"}]
    assert render_prompt("as is", TemplateTokenizer()) == "as is"
    assert render_prompt(msgs, None) == "Be brief.\n1+1"
    assert render_prompt(msgs, types.SimpleNamespace(chat_template=None)) == "Be brief.\n1+1"
    assert render_prompt(msgs, TemplateTokenizer()) == "<|system|>Be brief.<|user|>1+1<|assistant|>"
    assert render_prompt(np.array(msgs, dtype=object), None) == "Be brief.\n1+1"  # as read from parquet
    with pytest.raises(ValueError, match="'role' and 'content'"):
        render_prompt([{"content": "x"}])
    with pytest.raises(ValueError, match="non-empty list of chat messages"):
        render_prompt([])


def test_run_evaluation_builds_and_writes_samples_tables(tmp_path):
    paths = {
        "easy": prepared(tmp_path / "easy.parquet", ["a0", "b1", "c3"]),
        "hard": prepared(tmp_path / "hard.parquet", ["d9"], index_base=7),
    }
    sampler = EchoSampler()
    assert isinstance(sampler, Sampler)
    out = tmp_path / "samples"
    df = run_evaluation(sampler, paths, 4, temperature=0.7, top_p=0.9, max_tokens=32, seed=5,
                        score_fn=score_last_digit, out_dir=out)  # fmt: skip
    assert sampler.calls == [{"n": 4, "temperature": 0.7, "top_p": 0.9, "max_tokens": 32, "seed": 5}] * 2
    assert len(df) == 3 * 4 + 1 * 4
    easy = df[df["benchmark"] == "easy"]
    assert easy["problem_id"].unique().tolist() == ["100", "101", "102"]
    assert easy.groupby("problem_id")["score"].sum().tolist() == [1.0, 1.0, 1.0]  # digits 0, 1, 3 < n
    assert df[df["benchmark"] == "hard"]["score"].sum() == 0.0
    row = easy.iloc[5]
    assert (row["response"], row["pred"], row["num_tokens"], row["sample_idx"]) == ("b1=1", "1", 3, 1)
    assert sorted(p.name for p in out.iterdir()) == ["easy.parquet", "hard.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "easy.parquet"), easy.reset_index(drop=True))


def test_run_evaluation_errors(tmp_path):
    path = prepared(tmp_path / "b.parquet", ["a0"])

    class Short(EchoSampler):
        def sample(self, prompts, **kw):
            return [outs[:-1] for outs in super().sample(prompts, **kw)]

    with pytest.raises(
        RuntimeError, match=r"returned 1 prompt\(s\) x \[1\] completion\(s\) .* expected 1 x 2"
    ):
        run_evaluation(Short(), {"b": path}, 2, score_fn=score_last_digit)
    pd.DataFrame({"prompt": ["x"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(
        ValueError, match=r"benchmark 'bad' .* missing column\(s\) 'data_source', 'reward_model'"
    ):
        run_evaluation(EchoSampler(), {"bad": tmp_path / "bad.parquet"}, 2, score_fn=score_last_digit)
    with pytest.raises(ValueError, match="does not exist"):
        run_evaluation(EchoSampler(), {"x": tmp_path / "none.parquet"}, 2, score_fn=score_last_digit)


def test_sampler_registry(monkeypatch):
    monkeypatch.setattr(sampling, "SAMPLERS", dict(sampling.SAMPLERS))
    with pytest.raises(ValueError, match="unknown sampler 'vlm'; known: embedded, vllm"):
        get_sampler("vlm", "m")
    register_sampler("ghost", "riskrl.no_such_module:Ghost")
    with pytest.raises(
        RuntimeError, match=r"sampler 'ghost' is not available: cannot import riskrl.no_such_module.Ghost"
    ):
        get_sampler("ghost", "m")
    with pytest.raises(ValueError, match="already registered"):
        register_sampler("vllm", "x:y")
    assert isinstance(get_sampler("vllm", "m"), VLLMSampler)


@pytest.fixture(scope="module")
def local_ray():
    import ray

    if ray.is_initialized():  # another module's cluster: use it, leave it running
        yield ray
        return
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


KW = {"n": 2, "temperature": 1.0, "top_p": 1.0, "max_tokens": 8, "seed": 0}


@pytest.mark.slow
@pytest.mark.skipif(not NO_VLLM, reason="vllm is installed")
def test_vllm_sampler_without_vllm_says_so(local_ray):
    with pytest.raises(RuntimeError) as err:
        VLLMSampler("some/model").sample(["1+1="], **KW)
    assert str(err.value) == VLLM_MISSING
    assert "pip install 'riskrl[gpu]'" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_vllm_sampler_refuses_a_cluster_without_gpu(local_ray, monkeypatch):
    if local_ray.cluster_resources().get("GPU", 0):
        pytest.skip("this Ray cluster has a GPU")
    monkeypatch.setattr(sampling, "_require_vllm", lambda: None)  # as if the gpu extra were installed

    def no_submit(*a, **k):
        raise AssertionError("submitted a task to a cluster without GPU")

    monkeypatch.setattr(local_ray, "remote", no_submit)
    with pytest.raises(
        RuntimeError, match=r"^the Ray cluster has no GPU \(CPU=\d+, GPU=0\); the vLLM sampler needs one"
    ):
        VLLMSampler("some/model").sample(["1+1="], **KW)


def test_vllm_generate_with_a_fake_vllm(monkeypatch):
    """The GPU-side function: LLM/SamplingParams arguments, prompt rendering, per-prompt seeds,
    output conversion; and an engine that takes one SamplingParams per call gets one call per prompt."""
    seen = {"calls": []}

    class LLM:
        def __init__(self, model, seed, **kw):
            seen["llm"] = {"model": model, "seed": seed, **kw}

        def get_tokenizer(self):
            return TemplateTokenizer()

        def generate(self, prompts, params):
            seen["calls"].append((prompts, params))
            params = params if isinstance(params, list) else [params] * len(prompts)
            out = types.SimpleNamespace
            return [
                out(outputs=[out(text=f"{p}#{sp['seed']}.{j}", token_ids=[0] * (j + 1)) for j in range(sp["n"])])
                for p, sp in zip(prompts, params, strict=True)
            ]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake)
    msgs = [{"role": "user", "content": "2+2"}]
    got = sampling._vllm_generate("m", [msgs, "raw"], {**KW, "seed": 3}, {"dtype": "auto"})
    assert seen["llm"] == {"model": "m", "seed": 3, "dtype": "auto"}
    assert seen["calls"] == [(["<|user|>2+2<|assistant|>", "raw"], {**KW, "seed": 3})]
    assert got == [
        [("<|user|>2+2<|assistant|>#3.0", 1), ("<|user|>2+2<|assistant|>#3.1", 2)],
        [("raw#3.0", 1), ("raw#3.1", 2)],
    ]
    seen["calls"].clear()
    got = sampling._vllm_generate("m", [msgs, "raw"], {**KW, "seed": 3}, {}, seeds=[11, 12])
    assert seen["calls"] == [(["<|user|>2+2<|assistant|>", "raw"], [{**KW, "seed": 11}, {**KW, "seed": 12}])]
    assert [o[0][0] for o in got] == ["<|user|>2+2<|assistant|>#11.0", "raw#12.0"]

    both = LLM.generate

    def one_params_only(self, prompts, params):
        if isinstance(params, list):
            raise TypeError("SamplingParams expected")
        return both(self, prompts, params)

    monkeypatch.setattr(LLM, "generate", one_params_only)
    seen["calls"].clear()
    assert sampling._vllm_generate("m", [msgs, "raw"], {**KW, "seed": 3}, {}, seeds=[11, 12]) == got
