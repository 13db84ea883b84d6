import pytest

from riskrl.embedded.data import load_examples
from riskrl.embedded.sampler import EmbeddedSampler
from riskrl.embedded.task import check_answer


def test_sampler_interface(tiny_base, tiny_data):
    s = EmbeddedSampler(tiny_base, device="cpu", batch_size=7)  # batches cut across prompts
    rows = load_examples(tiny_data / "test.parquet")
    chat = [[{"role": "user", "content": r.prompt}] for r in rows[:3]]
    out = s.sample(chat, n=5, temperature=1.0, top_p=1.0, max_tokens=4, seed=1)
    assert len(out) == 3 and all(len(o) == 5 for o in out)
    for samples in out:
        for text, ntok in samples:
            assert isinstance(text, str) and 1 <= ntok <= 4
            assert ntok == len(text) + 1 or (
                ntok == 4 and len(text) == 4
            )  # chars + EOS, or cut at the budget
    assert out == s.sample(chat, n=5, temperature=1.0, top_p=1.0, max_tokens=4, seed=1)
    strings = s.sample([r.prompt for r in rows[:3]], n=5, temperature=1.0, top_p=1.0, max_tokens=4, seed=1)
    assert strings == out  # a chat prompt renders to its user message, as in training
    capped = s.sample([rows[0].prompt], n=2, temperature=1.0, top_p=1.0, max_tokens=1024, seed=0)[0]
    assert all(ntok <= s.model.config.max_position_embeddings for _, ntok in capped)
    greedy = s.sample([rows[0].prompt], n=3, temperature=0.0, top_p=1.0, max_tokens=4, seed=0)[0]
    assert len({t for t, _ in greedy}) == 1
    # the SFT-ed base is right on some training samples and wrong on others
    rows = load_examples(tiny_data / "train.parquet")
    many = s.sample([r.prompt for r in rows], n=16, temperature=1.0, top_p=1.0, max_tokens=4, seed=0)
    acc = [check_answer(t, r.ground_truth) for r, o in zip(rows, many, strict=True) for t, _ in o]
    assert 0 < sum(acc) < len(acc)


def test_sampler_bad_input(tiny_base):
    s = EmbeddedSampler(tiny_base, device="cpu")
    with pytest.raises(ValueError, match="n must be >= 1"):
        s.sample(["1*2="], n=0, temperature=1.0, top_p=1.0, max_tokens=4, seed=0)
    with pytest.raises(ValueError, match="prompt must be"):
        s.sample([[]], n=1, temperature=1.0, top_p=1.0, max_tokens=4, seed=0)


def test_plugs_into_the_evaluation_module(tiny_base, tiny_data):
    from riskrl.evaluation.sampling import Sampler, get_sampler, run_evaluation

    sampler = get_sampler("embedded", tiny_base)
    assert isinstance(sampler, Sampler)
    table = run_evaluation(sampler, {"tiny": tiny_data / "train.parquet"}, n=4, max_tokens=3, seed=0)
    assert len(table) == 40 * 4
    assert 0 < table["score"].mean() < 1
