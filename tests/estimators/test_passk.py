import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from riskrl.estimators import passk_advantage
from riskrl.estimators.registry import compute_passk_outcome_advantage
from tests.estimators.conftest import REWARDS, make_batch
from tests.estimators.conftest import reward_batch as batch
from tests.estimators.reference import ref_passk


@pytest.mark.parametrize("rewards", REWARDS)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("seed", range(4))
def test_matches_loop_reference(seed, k, rewards):
    # unequal group sizes 1..6 (so one-response prompts and k > n), interleaved rows, V1 pad rows
    scores, uids = batch(seed, rewards, num_prompts=11, unequal=True, shuffle_rows=seed % 2 == 1, pad_rows=seed)
    got = passk_advantage(scores, uids, k)
    ref = ref_passk(scores.tolist(), list(uids), k)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), ref, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_random_options_match_reference(seed):
    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(1, 9))
    threshold = float(rng.uniform(-1.5, 1.5))
    eps = float(10 ** rng.uniform(-6, -2))
    scores, uids = batch(seed, "continuous", num_prompts=10, unequal=True, pad_rows=2)
    got = passk_advantage(scores.double(), uids, k, correct_threshold=threshold, eps=eps)
    ref = ref_passk(scores.double().tolist(), list(uids), k, threshold, eps)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-9, rtol=1e-9)


def test_known_values_n4_c1_k2():
    # n=4, c=1, k=2: R = 1 - C(3,2)/C(4,2) = 1/2, sigma = 1/2; correct: (1/2)/(1/2) = 1;
    # incorrect: (1 - 1/2 - C(2,1)/C(3,1)) / (1/2) = (1/2 - 2/3) * 2 = -1/3
    got = passk_advantage(torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64), np.array(["a"] * 4), 2, eps=1e-12)
    torch.testing.assert_close(got, torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3], dtype=torch.float64), atol=1e-10, rtol=0)


def test_threshold_and_plus_minus_one_rewards_agree():
    scores, uids = batch(3, "binary", num_prompts=8, n=6)
    a01 = passk_advantage(scores, uids, 4)
    apm = passk_advantage(2 * scores - 1, uids, 4)  # {-1, 1}: the published file mishandles these
    assert torch.equal(a01, apm)
    assert torch.count_nonzero(a01) > 0
    # the threshold is used: with threshold 2 nothing is correct, so R = 0 and every advantage is 0
    assert torch.count_nonzero(passk_advantage(scores, uids, 4, correct_threshold=2.0)) == 0
    # a reward exactly at the threshold counts as correct
    at = passk_advantage(torch.tensor([0.5, 0.0, 0.0]), np.array(["p"] * 3), 2)
    assert at[0] > 0 > at[1]


def test_threshold_compared_in_float64():
    # float32(0.7) = 0.69999998 < 0.7: incorrect (a float32 comparison would round 0.7 down and call it correct)
    scores = torch.tensor([0.7, 0.0, 0.0], dtype=torch.float32)
    got = passk_advantage(scores, np.array(["p"] * 3), 2, correct_threshold=0.7)
    np.testing.assert_allclose(got.numpy(), ref_passk(scores.tolist(), ["p"] * 3, 2, 0.7), atol=1e-7)
    assert torch.count_nonzero(got) == 0
    assert torch.count_nonzero(passk_advantage(scores, np.array(["p"] * 3), 2, correct_threshold=0.69)) == 3


def test_eps_is_used():
    s = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    u = np.array(["a"] * 4)
    a = passk_advantage(s, u, 2, eps=1e-12)
    b = passk_advantage(s, u, 2, eps=0.01)
    torch.testing.assert_close(b, a * 0.5 / 0.51, atol=1e-10, rtol=1e-10)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 12), data=st.data())
def test_vanishes_when_n_minus_c_below_k(n, data):
    k = data.draw(st.integers(1, n))
    c = data.draw(st.integers(max(n - k + 1, 0), n))  # n - c < k
    scores = torch.tensor([1.0] * c + [0.0] * (n - c), dtype=torch.float64)
    adv = passk_advantage(scores, np.zeros(n, dtype=np.int64), k)
    assert torch.count_nonzero(adv) == 0


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 12), data=st.data())
def test_nonzero_and_signed_when_some_k_subset_misses(n, data):
    k = data.draw(st.integers(1, n))
    c = data.draw(st.integers(1, n - k)) if n - k >= 1 else None
    if c is None:
        return
    scores = torch.tensor([1.0] * c + [0.0] * (n - c), dtype=torch.float64)
    adv = passk_advantage(scores, np.zeros(n, dtype=np.int64), k)
    assert (adv[:c] > 0).all() and (adv[c:] < 0).all()
    ref = ref_passk(scores.tolist(), [0] * n, k)
    np.testing.assert_allclose(adv.numpy(), ref, atol=1e-9)


def test_registry_reads_plain_dict_and_dictconfig():
    from omegaconf import OmegaConf

    scores, uids = batch(5, "binary", num_prompts=6, n=5)
    L = 4
    rewards = torch.zeros(scores.numel(), L)
    rewards[:, -1] = scores
    mask = torch.ones(scores.numel(), L, dtype=torch.int64)
    mask[::3, 2:] = 0
    rewards[::3, -1] = 0
    rewards[::3, 1] = scores[::3]
    for cfg in ({"passk": {"k": 3, "epsilon": 1e-3}}, OmegaConf.create({"passk": {"k": 3, "epsilon": 1e-3}})):
        adv, ret = compute_passk_outcome_advantage(rewards, mask, uids, config=cfg)
        assert torch.equal(adv, ret)
        ref = ref_passk(scores.tolist(), list(uids), 3, 0.5, 1e-3)
        expect = torch.tensor(ref, dtype=torch.float32).unsqueeze(-1) * mask
        torch.testing.assert_close(adv, expect, atol=1e-6, rtol=1e-6)
    # defaults: k = 4
    adv, _ = compute_passk_outcome_advantage(rewards, mask, uids, config=None)
    torch.testing.assert_close(adv[:, 0], torch.tensor(ref_passk(scores.tolist(), list(uids), 4)), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=0), r"^passk.k=0: Input should be greater than or equal to 1$"),
        (dict(k=2, eps=0.0), r"^passk.epsilon=0.0: Input should be greater than 0$"),
        (dict(k=2, correct_threshold=math.nan), r"^passk.correct_threshold=nan: "),
    ],
)
def test_bad_options_one_line(kwargs, message):
    scores, uids = make_batch(0)
    with pytest.raises(ValueError, match=message):
        passk_advantage(scores, uids, **kwargs)


def test_bad_config_key_one_line():
    with pytest.raises(ValueError, match=r"^unknown key passk.kk$"):
        compute_passk_outcome_advantage(torch.zeros(2, 3), torch.ones(2, 3), np.array(["a", "a"]), config={"passk": {"kk": 2}})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    scores, uids = batch(5, "binary", num_prompts=20, unequal=True, pad_rows=3)
    cpu = passk_advantage(scores, uids, 4)
    gpu = passk_advantage(scores.cuda(), uids, 4)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-6, rtol=1e-6)
