"""RS-GRPO: the risk-sensitive (exponential-utility) advantage.

Math: ../docs/estimators.md#rs-grpo (METHODS.md "RS-GRPO"). Per prompt with responses
``r_1..r_n`` the objective is ``J_beta = (1/beta) log E[exp(beta r)]`` and

    A_i = (1/beta) * (exp(beta r_i) / ((1/n) sum_j exp(beta r_j)) - 1)

computed stably as ``s = (logsumexp(beta r) - log n) / beta``,
``A_i = expm1(beta (r_i - s)) / beta``, after centring ``r`` on the prompt's mean (so a tiny
``beta`` gives ``r_i - mean r`` and advantages that sum to 0, without cancellation); a prompt
where ``|beta (r_i - mean r)| < 1e-10`` for every response gets ``r_i - mean r`` itself (the
first-order term, relative error below 1e-10; dividing by a subnormal beta would lose every digit).

- ``beta > 0`` is risk seeking (``beta -> inf``: the max), ``beta = 2`` the recommended
  default; ``beta = 0`` gives ``r_i - mean r`` exactly (Dr. GRPO without std);
  ``beta < 0`` is risk averse (``beta -> -inf``: the min) and is allowed.
- A prompt with a single response gets 0. The advantages of a prompt sum to 0.
"""

from __future__ import annotations

import math

import torch

from riskrl.estimators._groups import Groups, out_dtype, response_groups


def _work_dtype(t: torch.Tensor) -> torch.dtype:
    # small (N,) vectors: float64 is free on CPU and GPU alike and keeps the 1e-6 contract
    return torch.float64


def rs_grpo_from_groups(scores: torch.Tensor, groups: Groups, beta: float) -> torch.Tensor:
    """RS-GRPO advantage (N,) float64 for (N,) ``scores`` grouped by ``groups`` (pads -> 0)."""
    beta = float(beta)
    if not math.isfinite(beta):
        raise ValueError(f"rs_grpo.beta must be finite, got {beta}")
    r = scores.to(_work_dtype(scores))
    num_groups = groups.num_groups
    if num_groups == 0:  # an empty or all-pad batch
        return torch.zeros_like(r)
    valid = groups.valid
    g = groups.group.clamp(min=0)
    if groups.has_pad:
        r = torch.where(valid, r, torch.zeros_like(r))
    counts = groups.counts.to(r.dtype)  # (P,)
    if beta == 0.0:
        sums = torch.zeros(num_groups, dtype=r.dtype, device=r.device).index_add_(0, g, r)
        adv = r - (sums / counts).index_select(0, g)
    else:
        # Centre on the group mean first: y = beta (r - mean), L = log mean exp(y) per prompt, so
        # s = mean + L / beta and A = expm1(y - L) / beta. L comes from log1p(mean(expm1(y))) when
        # max y <= 1 (no cancellation, so a tiny beta still gives r - mean and sums to 0), else from
        # the max-shifted logsumexp (no overflow for large beta |r|).
        sums = torch.zeros(num_groups, dtype=r.dtype, device=r.device).index_add_(0, g, r)
        dev = r - (sums / counts).index_select(0, g)  # (N,) r - mean r
        y = beta * dev
        y_in = torch.where(valid, y, torch.full_like(y, -math.inf)) if groups.has_pad else y
        ymax = torch.full((num_groups,), -math.inf, dtype=r.dtype, device=r.device)
        ymax = ymax.scatter_reduce(0, g, y_in, reduce="amax", include_self=True)  # (P,)
        small = ymax <= 1.0
        em1 = torch.expm1(torch.where(small.index_select(0, g), y_in, torch.zeros_like(y_in)))
        if groups.has_pad:
            em1 = torch.where(valid, em1, torch.zeros_like(em1))
        l_small = torch.log1p(torch.zeros(num_groups, dtype=r.dtype, device=r.device).index_add_(0, g, em1) / counts)
        shift = torch.where(small, torch.zeros_like(ymax), ymax)
        sumexp = torch.zeros(num_groups, dtype=r.dtype, device=r.device).index_add_(
            0, g, torch.exp(y_in - shift.index_select(0, g))
        )
        l_large = shift + torch.log(sumexp / counts)
        lme = torch.where(small, l_small, l_large)  # (P,) log mean exp(y) = beta (J_beta - mean r)
        adv = torch.expm1(y - lme.index_select(0, g)) / beta
        # |y| < 1e-10 over a prompt: A = (r - mean) (1 + O(|y|)), and dividing by a beta near the
        # smallest floats (a subnormal beta) would lose every digit, so take r - mean there
        yabs = torch.zeros(num_groups, dtype=r.dtype, device=r.device).scatter_reduce(
            0, g, torch.where(valid, y.abs(), torch.zeros_like(y)) if groups.has_pad else y.abs(),
            reduce="amax", include_self=True,
        )
        adv = torch.where((yabs < 1e-10).index_select(0, g), dev, adv)
    keep = counts.index_select(0, g) > 1  # a prompt with one response gets 0
    if groups.has_pad:
        keep = keep & valid
    return torch.where(keep, adv, torch.zeros_like(adv))


def rs_grpo_advantage(scores: torch.Tensor, index, beta: float = 2.0) -> torch.Tensor:
    """Per-response RS-GRPO advantage, usable outside verl (e.g. from a TRL subclass).

    Args:
        scores: (N,) float tensor, one scalar reward per response (any float dtype,
            computed in float64).
        index: (N,) prompt id per response (verl's ``uid`` array, or ints). String ids
            starting with ``pad`` are verl V1 padding rows and get 0.
        beta: risk sensitivity; > 0 risk seeking, 0 = ``r - mean``, < 0 risk averse.

    Returns:
        (N,) advantages, dtype ``promote(scores.dtype, float32)``, on ``scores.device``.
    """
    groups = response_groups(scores, index)
    return rs_grpo_from_groups(scores, groups, beta).to(out_dtype(scores))
