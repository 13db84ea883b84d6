"""Pass@k Training: the analytic pass@k advantage (Chen et al. 2025, arXiv 2508.10751).

Math: ../docs/estimators.md#pass-k-training (METHODS.md "Pass@k-oriented baselines"). Per
prompt with ``n`` responses of which ``c`` are correct (``r_i >= correct_threshold``) and
``k_g = min(k, n)``, with ``C(a, b) = 0`` when ``b > a`` or ``a < 0``:

    R           = 1 - C(n-c, k_g) / C(n, k_g)            (the prompt's unbiased pass@k)
    sigma       = sqrt(R (1 - R))
    A_correct   = (1 - R) / (sigma + eps)
    A_incorrect = (1 - R - C(n-c-1, k_g-1) / C(n-1, k_g-1)) / (sigma + eps)

A one-response prompt gets 0, and every advantage of a prompt is exactly 0 once
``n - c < k_g`` (every k-subset already holds a correct response) or ``c = 0``.

The ratios of binomials are falling-factorial products ``prod_{i<m} (a-i)^+ / (b-i)``
(exact zeros, no factorials, no overflow), computed for all prompts at once over an
(P, k_max) grid. Unlike the published ``passk_adv.py``, which counts only rewards exactly
1 as correct and passes any other value through unchanged, correctness is a threshold, so
{0, 1}, {-1, 1} and continuous rewards all work.
"""

from __future__ import annotations

import torch

from riskrl.estimators._groups import Groups, out_dtype, response_groups
from riskrl.estimators.options import parse_passk


def binomial_ratio(a: torch.Tensor, b: torch.Tensor, m: torch.Tensor, width: int) -> torch.Tensor:
    """``C(a, m) / C(b, m)`` per entry for float64 tensors of whole numbers with ``0 <= m <= b``:
    ``prod_{i<m} (a-i)^+ / (b-i)``, and 0 where ``a < 0`` (``C(a, m) = 0``). ``width >= max m``."""
    i = torch.arange(width, dtype=a.dtype, device=a.device)  # (W,)
    use = i < m.unsqueeze(-1)  # (P, W)
    num = (a.unsqueeze(-1) - i).clamp(min=0)
    den = b.unsqueeze(-1) - i
    factors = torch.where(use, num / torch.where(use, den, torch.ones_like(den)), torch.ones_like(num))
    out = factors.prod(dim=-1)
    return torch.where(a < 0, torch.zeros_like(out), out)


def passk_from_groups(
    scores: torch.Tensor, groups: Groups, k: int, correct_threshold: float, eps: float
) -> torch.Tensor:
    """Pass@k Training advantage (N,) float64 for (N,) ``scores`` grouped by ``groups`` (pads -> 0)."""
    f64 = torch.float64
    valid = groups.valid
    g = groups.group.clamp(min=0)
    num_groups = groups.num_groups
    correct = scores.to(f64) >= float(correct_threshold)
    if groups.has_pad:
        correct = correct & valid
    if num_groups == 0:
        return torch.zeros(scores.shape[0], dtype=f64, device=scores.device)
    n = groups.counts.to(f64)  # (P,)
    c = torch.zeros(num_groups, dtype=f64, device=scores.device).index_add_(0, g, correct.to(f64))
    kg = n.clamp(max=float(k))  # k_g = min(k, n)
    width = int(min(int(k), int(groups.counts.max())))
    R = 1.0 - binomial_ratio(n - c, n, kg, width)  # (P,) the prompt's pass@k
    sigma = torch.sqrt(R * (1.0 - R))
    miss = binomial_ratio(n - c - 1.0, n - 1.0, kg - 1.0, max(width - 1, 1))  # P(k-1 others all wrong)
    adv_correct = (1.0 - R) / (sigma + eps)
    adv_incorrect = (1.0 - R - miss) / (sigma + eps)
    adv = torch.where(correct, adv_correct.index_select(0, g), adv_incorrect.index_select(0, g))
    keep = n.index_select(0, g) > 1  # a one-response prompt gets 0
    if groups.has_pad:
        keep = keep & valid
    return torch.where(keep, adv, torch.zeros_like(adv))


def passk_advantage(
    scores: torch.Tensor, index, k: int, correct_threshold: float = 0.5, eps: float = 1e-6
) -> torch.Tensor:
    """Per-response Pass@k Training advantage, usable outside verl.

    ``R = 1 - C(n-c, k_g)/C(n, k_g)``, ``sigma = sqrt(R (1 - R))``; a correct response
    (``r >= correct_threshold``) gets ``(1 - R)/(sigma + eps)``, an incorrect one
    ``(1 - R - C(n-c-1, k_g-1)/C(n-1, k_g-1))/(sigma + eps)``, ``k_g = min(k, n)``.

    Args:
        scores: (N,) float tensor, one scalar reward per response.
        index: (N,) prompt id per response (verl's ``uid`` array, or ints); ``pad...`` string
            ids are verl V1 padding rows and get 0.
        k: the k of pass@k (>= 1; per prompt ``min(k, n)``).
        correct_threshold: a response is correct when its reward is >= this (0.5 fits {0, 1}
            and {-1, 1} rewards).
        eps: added to ``sigma`` (published: 1e-6).

    Returns:
        (N,) advantages, dtype ``promote(scores.dtype, float32)``, on ``scores.device``.
    """
    opts = parse_passk(k=k, correct_threshold=correct_threshold, epsilon=eps)
    groups = response_groups(scores, index)
    adv = passk_from_groups(scores, groups, opts.k, opts.correct_threshold, opts.epsilon)
    return adv.to(out_dtype(scores))
