"""PKPO: unbiased max@k gradient weights for any real rewards (Walder & Karkhanis 2025, arXiv 2505.15201).

Math: ../docs/estimators.md#pkpo (METHODS.md "Pass@k-oriented baselines"). Per prompt with
rewards ``r_1..r_n`` and ``k_g = min(k, n)``, over the ``k_g``-subsets ``I`` of its responses:

    s_i = (1 / C(n, k_g)) * sum_{I containing i} max_{j in I} r_j

Baselines: ``none`` -> ``s_i``; ``mean`` -> ``s_i - mean_prompt(s)``; ``loo`` (default) ->
``(1 / C(n, k_g)) * sum_{I containing i} (max_I r - max_{I without i} r)`` for ``k_g >= 2``
and ``(r_i - mean of the other responses' r) / n`` for ``k_g = 1``. A one-response prompt gets 0.

Computed from each prompt's sorted rewards, never by enumerating subsets. With the prompt's
rewards in ascending order ``r_(1) <= ... <= r_(n)`` (ties broken by any fixed order: the
max of a subset does not depend on it), the response at rank ``i`` is the max of the
``C(i-1, k-1)`` subsets drawn below it, and the ``C(j-2, k-2)`` subsets holding it and a
higher-ranked ``j`` have max ``r_(j)``; leaving ``i`` out, ``r_(j)`` with ``j < i`` is the max of
``C(j-1, k-2)`` of the remaining ``(k-1)``-subsets. So, with ``k = k_g``:

    s_(i)   = [C(i-1, k-1) r_(i) + sum_{j>i} C(j-2, k-2) r_(j)] / C(n, k)
    loo_(i) = [C(i-1, k-1) r_(i) - sum_{j<i} C(j-1, k-2) r_(j)] / C(n, k)

(the ``j > i`` terms cancel in ``loo``). For binary rewards with ``c`` correct this gives
``s = k/n`` for a correct response, ``(k/n) (1 - C(n-c-1, k-1)/C(n-1, k-1))`` for an incorrect
one, and ``loo = C(n-c, k-1)/C(n, k)`` for a correct and exactly 0 for an incorrect one.
The segment sums are one sort of the batch by (prompt, reward) and cumulative sums:
O(N log N) for the batch, no Python loop over responses or prompts.
"""

from __future__ import annotations

import torch

from riskrl.estimators._groups import Groups, out_dtype, response_groups
from riskrl.estimators.options import parse_pkpo


def _log_comb(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log C(a, b) for float64 whole numbers with 0 <= b <= a (other entries: garbage, mask them)."""
    a_, b_ = a.clamp(min=0), b.clamp(min=0)
    d = (a_ - b_).clamp(min=0)
    return torch.lgamma(a_ + 1) - torch.lgamma(b_ + 1) - torch.lgamma(d + 1)


def comb_over(a: torch.Tensor, b: torch.Tensor, log_norm: torch.Tensor) -> torch.Tensor:
    """``C(a, b) / exp(log_norm)`` per entry, with ``C(a, b) = 0`` when ``b < 0``, ``b > a`` or ``a < 0``."""
    ok = (b >= 0) & (b <= a) & (a >= 0)
    val = torch.exp(_log_comb(a, b) - log_norm)
    return torch.where(ok, val, torch.zeros_like(val))


def pkpo_from_groups(scores: torch.Tensor, groups: Groups, k: int, baseline: str) -> torch.Tensor:
    """PKPO weights (N,) float64 for (N,) ``scores`` grouped by ``groups`` (pads -> 0)."""
    f64 = torch.float64
    dev = scores.device
    n_rows = scores.shape[0]
    num_groups = groups.num_groups
    if num_groups == 0:
        return torch.zeros(n_rows, dtype=f64, device=dev)
    valid = groups.valid
    r = scores.to(f64)
    if groups.has_pad:
        r = torch.where(valid, r, torch.zeros_like(r))
    key = torch.where(valid, groups.group, torch.full_like(groups.group, num_groups))  # pads sort last
    # sort by (prompt, reward): reward first, then a stable sort by prompt
    order = torch.argsort(r, stable=True)
    order = order.index_select(0, torch.argsort(key.index_select(0, order), stable=True))
    rs, gs = r.index_select(0, order), key.index_select(0, order)
    counts = torch.cat([groups.counts, (key == num_groups).sum().reshape(1)])  # (P+1,), last = pads
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n_rows, device=dev) - starts.index_select(0, gs)  # 0-based rank in its prompt
    n = counts.to(f64).index_select(0, gs)
    kg = n.clamp(max=float(k))
    j = rank.to(f64)  # = (1-based rank) - 1
    log_norm = _log_comb(n, kg)  # log C(n, k_g)
    own = comb_over(j, kg - 1, log_norm) * rs  # C(i-1, k-1) r_(i) / C(n, k)

    def segment_exclusive_prefix(x: torch.Tensor) -> torch.Tensor:
        # sum of x over the lower ranks of the same prompt (x sorted by prompt)
        before = torch.cumsum(x, 0) - x
        return before - before.index_select(0, starts.index_select(0, gs))

    if baseline == "loo":
        adv = own - segment_exclusive_prefix(comb_over(j, kg - 2, log_norm) * rs)
        # k_g = 1: (r_i - mean of the others) / n
        total = torch.zeros(num_groups + 1, dtype=f64, device=dev).index_add_(0, gs, rs).index_select(0, gs)
        rloo = (rs - (total - rs) / (n - 1.0).clamp(min=1.0)) / n
        adv = torch.where(kg >= 2, adv, rloo)
    else:
        up = comb_over(j - 1.0, kg - 2, log_norm) * rs  # C(j-2, k-2) r_(j) / C(n, k), for the lower ranks
        total = torch.zeros(num_groups + 1, dtype=f64, device=dev).index_add_(0, gs, up).index_select(0, gs)
        adv = own + (total - segment_exclusive_prefix(up) - up)  # + sum over higher ranks
        if baseline == "mean":
            sums = torch.zeros(num_groups + 1, dtype=f64, device=dev).index_add_(0, gs, adv).index_select(0, gs)
            adv = adv - sums / n
        elif baseline != "none":
            raise ValueError(f"pkpo.baseline={baseline!r}: Input should be 'none', 'mean' or 'loo'")
    keep = (n > 1) & (gs < num_groups)  # one-response prompts and pads get 0
    adv = torch.where(keep, adv, torch.zeros_like(adv))
    return torch.empty_like(adv).index_copy_(0, order, adv)


def pkpo_advantage(scores: torch.Tensor, index, k: int, baseline: str = "loo") -> torch.Tensor:
    """Per-response PKPO max@k weights, usable outside verl.

    ``s_i = (1/C(n, k_g)) sum_{|I| = k_g, i in I} max_I r``; ``baseline``: ``none`` (``s_i``),
    ``mean`` (``s_i - mean(s)``) or ``loo`` (``(1/C(n, k_g)) sum_{I ni i} (max_I r - max_{I \\ i} r)``,
    and ``(r_i - mean of the others)/n`` for ``k_g = 1``), ``k_g = min(k, n)``.

    Args:
        scores: (N,) float tensor, one scalar reward per response (any real values).
        index: (N,) prompt id per response (verl's ``uid`` array, or ints); ``pad...`` string
            ids are verl V1 padding rows and get 0.
        k: the k of max@k (>= 1).
        baseline: ``"none"``, ``"mean"`` or ``"loo"``.

    Returns:
        (N,) advantages, dtype ``promote(scores.dtype, float32)``, on ``scores.device``.
    """
    opts = parse_pkpo(k=k, baseline=baseline)
    groups = response_groups(scores, index)
    adv = pkpo_from_groups(scores, groups, opts.k, opts.baseline)
    return adv.to(out_dtype(scores))
