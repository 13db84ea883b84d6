"""RS-GRPO: the risk-sensitive (exponential-utility) advantage.

Math: ../docs/estimators.md#rs-grpo (METHODS.md "RS-GRPO"). Per prompt with responses
``r_1..r_n`` the objective is ``J_beta = (1/beta) log E[exp(beta r)]`` and

    A_i = (1/beta) * (exp(beta r_i) / ((1/n) sum_j exp(beta r_j)) - 1)

computed stably as ``s = (logsumexp(beta r) - log n) / beta``,
``A_i = expm1(beta (r_i - s)) / beta``.

- ``beta > 0`` is risk seeking (``beta -> inf``: the max), ``beta = 2`` the recommended
  default; ``beta = 0`` gives ``r_i - mean r`` exactly (Dr. GRPO without std);
  ``beta < 0`` is risk averse (``beta -> -inf``: the min) and is allowed.
- A prompt with a single response gets 0. The advantages of a prompt sum to 0.
"""

from __future__ import annotations

import math

import torch

from riskrl.estimators._groups import Groups, check_finite, factorize


def _work_dtype(t: torch.Tensor) -> torch.dtype:
    # small (N,) vectors: float64 is free on CPU and GPU alike and keeps the 1e-6 contract
    return torch.float64


def _out_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32) if t.is_floating_point() else torch.float32


def rs_grpo_from_groups(scores: torch.Tensor, groups: Groups, beta: float) -> torch.Tensor:
    """RS-GRPO advantage (N,) float64 for (N,) ``scores`` grouped by ``groups`` (pads -> 0)."""
    beta = float(beta)
    if not math.isfinite(beta):
        raise ValueError(f"rs_grpo.beta must be finite, got {beta}")
    r = scores.to(_work_dtype(scores))
    num_groups = groups.num_groups
    valid = groups.valid
    g = groups.group.clamp(min=0)
    if groups.has_pad:
        r = torch.where(valid, r, torch.zeros_like(r))
    counts = groups.counts.to(r.dtype)  # (P,)
    if beta == 0.0:
        sums = torch.zeros(num_groups, dtype=r.dtype, device=r.device).index_add_(0, g, r)
        adv = r - (sums / counts).index_select(0, g)
    else:
        x = beta * r  # (N,)
        x_in = torch.where(valid, x, torch.full_like(x, -math.inf)) if groups.has_pad else x
        xmax = torch.full((num_groups,), -math.inf, dtype=r.dtype, device=r.device)
        xmax = xmax.scatter_reduce(0, g, x_in, reduce="amax", include_self=True)
        sumexp = torch.zeros(num_groups, dtype=r.dtype, device=r.device).index_add_(0, g, torch.exp(x_in - xmax.index_select(0, g)))
        lse = xmax + torch.log(sumexp)  # (P,) logsumexp(beta r) per prompt
        s = (lse - torch.log(counts)) / beta  # (P,) certainty equivalent J_beta
        adv = torch.expm1(beta * (r - s.index_select(0, g))) / beta
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
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-D (one reward per response), got shape {tuple(scores.shape)}")
    check_finite(scores)
    groups = factorize(index, device=scores.device)
    if groups.group.numel() != scores.numel():
        raise ValueError(f"index has {groups.group.numel()} entries but scores has {scores.numel()}")
    return rs_grpo_from_groups(scores, groups, beta).to(_out_dtype(scores))
