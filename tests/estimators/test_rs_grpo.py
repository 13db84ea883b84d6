import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from riskrl.estimators import rs_grpo_advantage
from tests.estimators.conftest import make_batch
from tests.estimators.reference import ref_rs_grpo


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0, 8.0, -2.0, 50.0])
@pytest.mark.parametrize("seed", range(3))
def test_matches_loop_reference(seed, beta, binary):
    scores, uids = make_batch(seed, num_prompts=9, unequal=True, binary=binary, shuffle_rows=seed == 2, pad_rows=seed)
    got = rs_grpo_advantage(scores, uids, beta)
    ref = ref_rs_grpo(scores.tolist(), list(uids), beta)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), ref, atol=1e-6, rtol=1e-6)


def test_default_beta_is_2():
    scores, uids = make_batch(4, num_prompts=5, binary=False)
    assert torch.equal(rs_grpo_advantage(scores, uids), rs_grpo_advantage(scores, uids, 2.0))
    assert not torch.equal(rs_grpo_advantage(scores, uids), rs_grpo_advantage(scores, uids, 3.0))


def test_beta_zero_is_exactly_r_minus_mean():
    scores, uids = make_batch(3, binary=False)
    got = rs_grpo_advantage(scores.double(), uids, 0.0)
    r = scores.double().view(-1, 4)
    assert torch.equal(got, (r - r.sum(1, keepdim=True) / 4).view(-1))  # no division by beta


def test_small_beta_approaches_r_minus_mean_and_groups_sum_to_zero():
    scores, uids = make_batch(4, binary=False)
    a0 = rs_grpo_advantage(scores.double(), uids, 0.0)
    a_small = rs_grpo_advantage(scores.double(), uids, 1e-5)
    assert torch.allclose(a_small, a0, atol=1e-4)
    for beta in (2.0, -3.0, 30.0):
        adv = rs_grpo_advantage(scores.double(), uids, beta).view(-1, 4)
        assert torch.allclose(adv.sum(1), torch.zeros(adv.shape[0], dtype=torch.float64), atol=1e-9)


def test_monotone_in_reward_and_one_response_gets_zero():
    scores = torch.tensor([0.1, 0.5, 0.9, 3.0, 7.0])
    uids = np.array(["p", "p", "p", "q", "r"], dtype=object)
    adv = rs_grpo_advantage(scores, uids, 2.0)
    assert adv[0] < adv[1] < adv[2]
    assert adv[3] == 0 and adv[4] == 0


@pytest.mark.parametrize("beta", [0.5, 2.0, 4.0])
def test_risk_seeking_weight_for_binary_rewards(beta):
    # METHODS.md: A_RS = w(p) A_DrGRPO, w(p) = (e^b - 1) / (b (p e^b + 1 - p)); > 1 only for hard prompts,
    # p < p* = (e^b - 1 - b) / (b (e^b - 1)) (0.343 at beta 2). The weight is read off riskrl's output.
    n = 64
    counts = np.arange(1, n)  # one prompt per success count: p = c / n
    scores = torch.tensor(np.concatenate([[1.0] * c + [0.0] * (n - c) for c in counts]), dtype=torch.float64)
    uids = np.repeat(np.arange(len(counts)), n)
    rs = rs_grpo_advantage(scores, uids, beta).view(len(counts), n)
    dr = rs_grpo_advantage(scores, uids, 0.0).view(len(counts), n)
    w = rs[:, 0] / dr[:, 0]  # the correct response's weight, riskrl's numbers
    torch.testing.assert_close(rs, w.unsqueeze(1) * dr, atol=1e-12, rtol=1e-12)  # one weight per prompt
    p = torch.tensor(counts / n, dtype=torch.float64)
    torch.testing.assert_close(w, (math.exp(beta) - 1) / (beta * (p * math.exp(beta) + 1 - p)), atol=1e-12, rtol=1e-12)
    p_star = (math.exp(beta) - 1 - beta) / (beta * (math.exp(beta) - 1))
    assert torch.equal(w > 1, p < p_star)
    assert (w > 1).any() and (w < 1).any()
    assert torch.all(w[1:] < w[:-1])  # harder prompts are boosted more
    if beta == 2.0:
        assert p_star == pytest.approx(0.343, abs=5e-4)


def test_extreme_beta_is_finite():
    scores = torch.tensor([0.0, 1.0, 1.0, 100.0])
    uids = np.array(["a"] * 4, dtype=object)
    for beta in (100.0, -100.0):
        assert torch.isfinite(rs_grpo_advantage(scores, uids, beta)).all()


def test_bfloat16_input_computed_in_float32_or_better():
    scores, uids = make_batch(7, binary=False)
    bf = scores.to(torch.bfloat16)
    got = rs_grpo_advantage(bf, uids, 2.0)
    assert got.dtype == torch.float32
    ref = ref_rs_grpo(bf.float().tolist(), list(uids), 2.0)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_rewards_raise_one_line(bad):
    scores, uids = make_batch(1)
    scores[[2, 5]] = bad
    with pytest.raises(ValueError, match=r"^scores: 2 of 48 rows have NaN or inf rewards$"):
        rs_grpo_advantage(scores, uids, 2.0)


def test_integer_and_tensor_index():
    scores, _ = make_batch(2, num_prompts=3, n=3)
    idx_np = np.repeat(np.array([7, 3, 5]), 3)
    a = rs_grpo_advantage(scores, idx_np, 2.0)
    b = rs_grpo_advantage(scores, torch.from_numpy(idx_np), 2.0)
    ref = ref_rs_grpo(scores.tolist(), idx_np.tolist(), 2.0)
    np.testing.assert_allclose(a.numpy(), ref, atol=1e-6)
    assert torch.equal(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    scores, uids = make_batch(5, binary=False, unequal=True)
    cpu = rs_grpo_advantage(scores, uids, 2.0)
    gpu = rs_grpo_advantage(scores.cuda(), uids, 2.0)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-6, rtol=1e-6)


@settings(max_examples=80, deadline=None)
@given(
    groups=st.lists(st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=8), min_size=1, max_size=6),
    beta=st.floats(-8, 8, allow_nan=False),
)
def test_property_sums_to_zero_per_prompt_and_monotone(groups, beta):
    scores = torch.tensor([r for g in groups for r in g], dtype=torch.float64)
    uids = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    adv = rs_grpo_advantage(scores, uids, beta)
    sums = torch.zeros(len(groups), dtype=torch.float64).index_add_(0, torch.from_numpy(uids), adv)
    scale = 1.0 + float(adv.abs().max())
    assert torch.all(sums.abs() <= 1e-9 * scale * 8)
    for j in range(len(groups)):  # monotone (non-decreasing) in r within a prompt
        sel = torch.from_numpy(uids == j)
        r, a = scores[sel], adv[sel]
        order = torch.argsort(r)
        assert torch.all(torch.diff(a[order]) >= -1e-12 * scale)
        if len(r) == 1:
            assert a.item() == 0.0


@pytest.mark.parametrize("beta", [5e-324, -5e-324, 1e-310, 1e-200, 1e-12])
def test_tiny_and_subnormal_beta_give_r_minus_mean(beta):
    # found by the property test: a subnormal beta lost every digit in expm1(y - L) / beta
    scores = torch.tensor([0.0, 0.0, 1.0, 0.5, -2.0], dtype=torch.float64)
    uids = np.array([0, 0, 0, 1, 1])
    expected = torch.tensor([-1 / 3, -1 / 3, 2 / 3, 1.25, -1.25], dtype=torch.float64)
    torch.testing.assert_close(rs_grpo_advantage(scores, uids, beta).double(), expected, atol=1e-9, rtol=0)
