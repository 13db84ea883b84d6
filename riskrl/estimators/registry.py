"""verl adapters: ``rs_grpo``, ``riskpo``, ``passk`` and ``pkpo`` in verl's advantage-estimator registry.

verl's generic ``compute_advantage`` path calls a registered estimator with exactly
``token_level_rewards`` (bs, L), ``response_mask`` (bs, L), ``index`` (the uid ndarray) and
``config`` (the ``algorithm`` DictConfig), and expects ``(advantages, returns)``, both
(bs, L) (VERL_NOTES §1). These wrappers are thin: score = sum of token rewards, the
per-response estimator of this package, then one broadcast multiply by the mask.

Config keys (declared with their defaults in ``riskrl/verl/config/riskrl_trainer.yaml``):
``algorithm.rs_grpo.beta``, ``algorithm.riskpo.<published key>``, ``algorithm.passk.{k,
correct_threshold, epsilon}``, ``algorithm.pkpo.{k, baseline}`` and verl's own
``algorithm.norm_adv_by_std_in_grpo``. For scripts written for the RiskPO fork, its flat keys
(``+algorithm.bundle_size=5``) are honoured too and override ``algorithm.riskpo.*``, and its
estimator name ``grpo_bundle_RVaR_quantile_tracking`` is an alias of ``riskpo``.

The RiskPO quantile tracker is one object per process (the TaskRunner actor in verl, which
lives for the whole run: VERL_NOTES §2-3); the trainer subclass logs and checkpoints it.
"""

from __future__ import annotations

from typing import Any

import torch
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est

from riskrl.estimators._groups import check_finite, factorize
from riskrl.estimators.options import RiskPOOptions, parse_passk, parse_pkpo, parse_riskpo, parse_rs_grpo
from riskrl.estimators.passk import passk_from_groups
from riskrl.estimators.pkpo import pkpo_from_groups
from riskrl.estimators.riskpo import riskpo_from_groups
from riskrl.estimators.rs_grpo import rs_grpo_from_groups
from riskrl.estimators.tracker import QuantileTracker

FORK_ALIAS = "grpo_bundle_RVaR_quantile_tracking"
_FLAT_KEYS = tuple(k for k in RiskPOOptions.model_fields if k != "epsilon")

_PROCESS_TRACKER: QuantileTracker | None = None


def get_process_tracker(lr_q: float | None = None) -> QuantileTracker:
    """The RiskPO tracker of this process (created on first use)."""
    global _PROCESS_TRACKER
    if _PROCESS_TRACKER is None:
        _PROCESS_TRACKER = QuantileTracker(lr_q=0.1 if lr_q is None else lr_q)
    elif lr_q is not None:
        _PROCESS_TRACKER.lr_q = float(lr_q)
    return _PROCESS_TRACKER


def reset_process_tracker() -> QuantileTracker:
    """Start this process's tracker afresh (call at the start of every training run: Ray
    reuses worker processes across tasks)."""
    global _PROCESS_TRACKER
    _PROCESS_TRACKER = None
    return get_process_tracker()


def _cfg_get(config: Any, key: str, default: Any = None) -> Any:
    if config is None:
        return default
    getter = getattr(config, "get", None)
    return getter(key, default) if getter is not None else getattr(config, key, default)


def riskpo_options_from_config(config: Any) -> RiskPOOptions:
    nested = _cfg_get(config, "riskpo")
    flat = {k: v for k in _FLAT_KEYS if (v := _cfg_get(config, k)) is not None}
    return parse_riskpo(nested, **flat)


def _scores(token_level_rewards: torch.Tensor) -> torch.Tensor:
    if token_level_rewards.dim() != 2:
        raise ValueError(f"token_level_rewards must be (bs, response_length), got {tuple(token_level_rewards.shape)}")
    scores = token_level_rewards.sum(dim=-1)
    check_finite(scores, "token_level_rewards")  # a NaN/inf token makes its row sum non-finite
    return scores


def _broadcast(adv: torch.Tensor, token_level_rewards: torch.Tensor, response_mask: torch.Tensor):
    """(bs,) -> (bs, L) advantages on the response tokens: ``adv * mask``.

    verl's masks are integer 0/1; on CPU ``float * int64`` broadcasting is many times slower
    than a select on the boolean view, so integer and bool masks take ``torch.where``.
    """
    dtype = torch.promote_types(token_level_rewards.dtype, torch.float32)
    adv = adv.to(dtype).unsqueeze(-1)
    if response_mask.is_floating_point():
        advantages = adv * response_mask
    else:
        advantages = torch.where(response_mask.bool(), adv, torch.zeros((), dtype=dtype, device=adv.device))
    return advantages, advantages


@register_adv_est("rs_grpo")
def compute_rs_grpo_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index,
    config: Any = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RS-GRPO for verl: ``A_i = expm1(beta (r_i - s)) / beta``, s the group's (1/beta) log-mean-exp.

    Args:
        token_level_rewards: (bs, response_length)
        response_mask: (bs, response_length)
        index: (bs,) uid ndarray
        config: verl's ``algorithm`` config; reads ``rs_grpo.beta`` (default 2.0)

    Returns:
        advantages, returns: (bs, response_length), equal (outcome-only estimator)

    Note:
        Risk-sensitive policy optimisation, seed 002 (RS-GRPO); ``beta = 0`` is ``r - mean``.
    """
    opts = parse_rs_grpo(_cfg_get(config, "rs_grpo"))
    scores = _scores(token_level_rewards)
    groups = factorize(index, device=scores.device, response_mask=response_mask)
    adv = rs_grpo_from_groups(scores, groups, opts.beta)
    return _broadcast(adv, token_level_rewards, response_mask)


@register_adv_est("riskpo")
def compute_riskpo_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index,
    config: Any = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RiskPO (MVaR over bundles with tracked quantiles) for verl.

    Args:
        token_level_rewards: (bs, response_length)
        response_mask: (bs, response_length)
        index: (bs,) uid ndarray; bundles = consecutive prompts by first appearance; verl V1
            padding rows (uid ``pad...``, all-zero mask) get 0 and join no bundle
        config: verl's ``algorithm`` config: ``riskpo.*`` and ``norm_adv_by_std_in_grpo``

    Returns:
        advantages, returns: (bs, response_length), equal

    Note:
        RiskPO (arXiv:2510.00911). Unlike the published fork, the tracked quantiles of step
        t drive step t+1 in ``track``/``mix`` mode; ``batch`` reproduces the published runs.
    """
    opts = riskpo_options_from_config(config)
    norm = bool(_cfg_get(config, "norm_adv_by_std_in_grpo", True))
    scores = _scores(token_level_rewards)
    groups = factorize(index, device=scores.device, response_mask=response_mask)
    tracker = get_process_tracker(opts.lr_q)
    adv = riskpo_from_groups(scores, groups, opts, tracker, norm)
    return _broadcast(adv, token_level_rewards, response_mask)


@register_adv_est("passk")
def compute_passk_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index,
    config: Any = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass@k Training (Chen et al. 2025) for verl: the analytic pass@k advantage.

    Per prompt (n responses, c with reward >= ``correct_threshold``, ``k_g = min(k, n)``):
    ``R = 1 - C(n-c, k_g)/C(n, k_g)``, ``sigma = sqrt(R (1 - R))``; correct responses get
    ``(1 - R)/(sigma + eps)``, incorrect ones ``(1 - R - C(n-c-1, k_g-1)/C(n-1, k_g-1))/(sigma + eps)``.

    Args:
        token_level_rewards: (bs, response_length)
        response_mask: (bs, response_length)
        index: (bs,) uid ndarray
        config: verl's ``algorithm`` config; reads ``passk.k`` (4), ``passk.correct_threshold``
            (0.5), ``passk.epsilon`` (1e-6)

    Returns:
        advantages, returns: (bs, response_length), equal (outcome-only estimator)
    """
    opts = parse_passk(_cfg_get(config, "passk"))
    scores = _scores(token_level_rewards)
    groups = factorize(index, device=scores.device, response_mask=response_mask)
    adv = passk_from_groups(scores, groups, opts.k, opts.correct_threshold, opts.epsilon)
    return _broadcast(adv, token_level_rewards, response_mask)


@register_adv_est("pkpo")
def compute_pkpo_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index,
    config: Any = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PKPO (Walder & Karkhanis 2025) for verl: unbiased max@k gradient weights, any real rewards.

    ``s_i = (1/C(n, k_g)) sum over the k_g-subsets I containing i of max_I r``, with the
    baseline ``none`` / ``mean`` / ``loo`` (default), from each prompt's sorted rewards.

    Args:
        token_level_rewards: (bs, response_length)
        response_mask: (bs, response_length)
        index: (bs,) uid ndarray
        config: verl's ``algorithm`` config; reads ``pkpo.k`` (4) and ``pkpo.baseline`` (loo)

    Returns:
        advantages, returns: (bs, response_length), equal (outcome-only estimator)
    """
    opts = parse_pkpo(_cfg_get(config, "pkpo"))
    scores = _scores(token_level_rewards)
    groups = factorize(index, device=scores.device, response_mask=response_mask)
    adv = pkpo_from_groups(scores, groups, opts.k, opts.baseline)
    return _broadcast(adv, token_level_rewards, response_mask)


if ADV_ESTIMATOR_REGISTRY.get(FORK_ALIAS) is None:
    ADV_ESTIMATOR_REGISTRY[FORK_ALIAS] = compute_riskpo_outcome_advantage
