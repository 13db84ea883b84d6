import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from riskrl.estimators import pkpo_advantage
from riskrl.estimators.registry import compute_pkpo_outcome_advantage
from tests.estimators.conftest import REWARDS, make_batch
from tests.estimators.conftest import reward_batch as batch
from tests.estimators.reference import ref_pkpo

BASELINES = ["none", "mean", "loo"]


@pytest.mark.parametrize("baseline", BASELINES)
@pytest.mark.parametrize("rewards", REWARDS)
@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("seed", range(3))
def test_matches_subset_enumeration(seed, k, rewards, baseline):
    # unequal group sizes 1..6 (one-response prompts, k > n), interleaved rows, V1 pad rows
    scores, uids = batch(seed, rewards, num_prompts=10, unequal=True, shuffle_rows=seed == 1, pad_rows=seed + 1)
    got = pkpo_advantage(scores, uids, k, baseline)
    ref = ref_pkpo(scores.tolist(), list(uids), k, baseline)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), ref, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_random_k_and_ties_match_enumeration(seed):
    rng = np.random.default_rng(200 + seed)
    k = int(rng.integers(1, 8))
    n = int(rng.integers(2, 9))
    # rewards from a small set of values: many ties, which the sort must not mishandle
    scores = torch.tensor(rng.choice([-1.0, 0.0, 0.25, 1.0], size=5 * n), dtype=torch.float64)
    uids = np.repeat(np.array([f"q{j}" for j in rng.permutation(5)], dtype=object), n)
    for baseline in BASELINES:
        got = pkpo_advantage(scores, uids, k, baseline)
        ref = ref_pkpo(scores.tolist(), list(uids), k, baseline)
        np.testing.assert_allclose(got.numpy(), ref, atol=1e-9, rtol=1e-9)


def test_large_group_binomial_weights():
    # n = 16, k = 8: 12870 subsets per prompt in the reference; weights from lgamma stay exact to 1e-9
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(32, generator=g, dtype=torch.float64)
    uids = np.repeat(np.array(["a", "b"], dtype=object), 16)
    for baseline in BASELINES:
        got = pkpo_advantage(scores, uids, 8, baseline)
        ref = ref_pkpo(scores.tolist(), list(uids), 8, baseline)
        np.testing.assert_allclose(got.numpy(), ref, atol=1e-9, rtol=1e-9)


def test_binary_closed_forms():
    n, c, k = 7, 3, 3
    scores = torch.tensor([1.0] * c + [0.0] * (n - c), dtype=torch.float64)
    uids = np.array(["p"] * n, dtype=object)
    s = pkpo_advantage(scores, uids, k, "none")
    torch.testing.assert_close(s[:c], torch.full((c,), k / n, dtype=torch.float64))
    rho = 1 - math.comb(n - c - 1, k - 1) / math.comb(n - 1, k - 1)
    torch.testing.assert_close(s[c:], torch.full((n - c,), k / n * rho, dtype=torch.float64))
    loo = pkpo_advantage(scores, uids, k, "loo")
    torch.testing.assert_close(loo[:c], torch.full((c,), math.comb(n - c, k - 1) / math.comb(n, k), dtype=torch.float64))
    assert torch.count_nonzero(loo[c:]) == 0
    mean = pkpo_advantage(scores, uids, k, "mean")
    torch.testing.assert_close(mean, s - s.mean())


def test_k1_loo_is_rloo_over_n():
    scores = torch.tensor([0.3, 1.2, -0.4, 2.0], dtype=torch.float64)
    got = pkpo_advantage(scores, np.array(["x"] * 4, dtype=object), 1, "loo")
    expect = torch.stack([(scores[i] - (scores.sum() - scores[i]) / 3) / 4 for i in range(4)])
    torch.testing.assert_close(got, expect)
    # k = 1 without a baseline is r / n
    torch.testing.assert_close(pkpo_advantage(scores, np.array(["x"] * 4, dtype=object), 1, "none"), scores / 4)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(2, 9), data=st.data())
def test_loo_binary_gives_zero_to_every_incorrect_response(n, data):
    k = data.draw(st.integers(1, 10))
    bits = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    scores = torch.tensor([float(b) for b in bits], dtype=torch.float64)
    adv = pkpo_advantage(scores, np.zeros(n, dtype=np.int64), k, "loo")
    wrong = ~torch.tensor(bits)
    if k >= 2:
        assert torch.count_nonzero(adv[wrong]) == 0
        assert (adv[~wrong] >= -1e-12).all()  # C(n-c, k-1)/C(n, k) >= 0, up to rounding
    else:  # k_g = 1 is RLOO / n, which does push incorrect responses down when some are correct
        assert (adv[wrong] <= 0).all()


@settings(max_examples=60, deadline=None)
@given(rewards=st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=7), k=st.integers(1, 8))
def test_property_matches_enumeration_and_mean_baseline_sums_to_zero(rewards, k):
    scores = torch.tensor(rewards, dtype=torch.float64)
    uids = np.zeros(len(rewards), dtype=np.int64)
    for baseline in BASELINES:
        got = pkpo_advantage(scores, uids, k, baseline)
        np.testing.assert_allclose(got.numpy(), ref_pkpo(rewards, [0] * len(rewards), k, baseline), atol=1e-9)
    assert abs(float(pkpo_advantage(scores, uids, k, "mean").sum())) < 1e-9


def test_registry_reads_plain_dict_and_dictconfig():
    from omegaconf import OmegaConf

    scores, uids = batch(6, "continuous", num_prompts=7, n=5)
    rewards = torch.zeros(scores.numel(), 3)
    rewards[:, 0] = scores
    mask = torch.ones(scores.numel(), 3, dtype=torch.int64)
    mask[1::2, 1:] = 0
    for cfg in ({"pkpo": {"k": 3, "baseline": "mean"}}, OmegaConf.create({"pkpo": {"k": 3, "baseline": "mean"}})):
        adv, ret = compute_pkpo_outcome_advantage(rewards, mask, uids, config=cfg)
        assert torch.equal(adv, ret)
        ref = torch.tensor(ref_pkpo(scores.tolist(), list(uids), 3, "mean"), dtype=torch.float32)
        torch.testing.assert_close(adv, ref.unsqueeze(-1) * mask, atol=1e-6, rtol=1e-6)
    adv, _ = compute_pkpo_outcome_advantage(rewards, mask, uids, config={})  # defaults: k 4, loo
    ref = torch.tensor(ref_pkpo(scores.tolist(), list(uids), 4, "loo"), dtype=torch.float32)
    torch.testing.assert_close(adv[:, 0], ref, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=0), r"^pkpo.k=0: Input should be greater than or equal to 1$"),
        (dict(k=2, baseline="rloo"), r"^pkpo.baseline='rloo': Input should be 'none', 'mean' or 'loo'$"),
    ],
)
def test_bad_options_one_line(kwargs, message):
    scores, uids = make_batch(0)
    with pytest.raises(ValueError, match=message):
        pkpo_advantage(scores, uids, **kwargs)


def test_nonfinite_rewards_raise():
    scores, uids = make_batch(0)
    scores[4] = float("inf")
    with pytest.raises(ValueError, match=r"^scores: 1 of 48 rows have NaN or inf rewards$"):
        pkpo_advantage(scores, uids, 4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    scores, uids = batch(5, "continuous", num_prompts=20, unequal=True, pad_rows=3)
    cpu = pkpo_advantage(scores, uids, 4)
    gpu = pkpo_advantage(scores.cuda(), uids, 4)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-6, rtol=1e-6)
