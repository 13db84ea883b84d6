"""The embedded trainer's bridge to verl: estimator registry, ``algorithm.*`` config, losses, reward.

Everything algorithmic is verl's (or riskrl's registered estimators): this file only builds
the same config objects the verl path builds and calls the functions the way verl calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from riskrl.embedded.configs import estimator_section


def algorithm_config(cfg: Any) -> DictConfig:
    """verl's ``algorithm`` section for this run (same keys as the verl path's YAML):
    ``adv_estimator``, ``norm_adv_by_std_in_grpo`` and, for riskrl's estimators
    (``ESTIMATOR_OPTIONS``), the complete ``algorithm.<estimator>`` section."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    import riskrl.estimators.registry  # noqa: F401  (registers riskrl's estimators with verl)
    from riskrl.estimators.options import ESTIMATOR_OPTIONS

    if cfg.estimator not in ADV_ESTIMATOR_REGISTRY:
        raise ValueError(
            f"unknown estimator {cfg.estimator!r}; known: {', '.join(sorted(ADV_ESTIMATOR_REGISTRY))}"
        )
    algo: dict[str, Any] = {
        "adv_estimator": cfg.estimator,
        "norm_adv_by_std_in_grpo": bool(cfg.norm_adv_by_std_in_grpo),
    }
    if cfg.estimator in ESTIMATOR_OPTIONS:
        algo[cfg.estimator] = estimator_section(cfg.estimator, dict(cfg.estimator_options))
    return OmegaConf.create(algo)


def to_plain(c: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(c, resolve=True)  # type: ignore[return-value]


def compute_advantages(
    name: str,
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray,
    algo_cfg: DictConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), both (bs, L), exactly as verl's ``ray_trainer.compute_advantage``
    dispatches: ``grpo`` gets ``norm_adv_by_std_in_grpo`` as an argument, every other name the
    generic registry call with ``config``."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn

    if name == "grpo":
        return compute_grpo_outcome_advantage(
            token_level_rewards=token_level_rewards,
            response_mask=response_mask,
            index=index,
            norm_adv_by_std_in_grpo=bool(algo_cfg.norm_adv_by_std_in_grpo),
        )
    fn = get_adv_estimator_fn(name)
    return fn(
        token_level_rewards=token_level_rewards, response_mask=response_mask, index=index, config=algo_cfg
    )


def reset_tracker() -> Any:
    """Reset riskrl's process-wide RiskPO quantile tracker and return it: Ray reuses worker
    processes across tasks, so a run must never inherit the previous run's quantiles."""
    from riskrl.estimators import get_process_tracker, reset_process_tracker

    reset_process_tracker()
    return get_process_tracker()


def policy_loss_fn() -> Callable[..., tuple[torch.Tensor, dict[str, Any]]]:
    """verl's ``vanilla`` PPO-clip policy loss (dual-clip included), used as is."""
    from verl.trainer.ppo.core_algos import get_policy_loss_fn

    return get_policy_loss_fn("vanilla")


def actor_config(cfg: Any) -> DictConfig:
    """The part of verl's ``actor`` config the vanilla policy loss reads."""
    return OmegaConf.create(
        {
            "clip_ratio": cfg.clip_ratio,
            "clip_ratio_low": cfg.clip_ratio,
            "clip_ratio_high": cfg.clip_ratio,
            "clip_ratio_c": 3.0,
            "global_batch_info": {},  # single process: agg_loss counts the local tokens
        }
    )


def agg(loss_mat: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    from verl.trainer.ppo.core_algos import agg_loss

    return agg_loss(loss_mat=loss_mat, loss_mask=mask, loss_agg_mode=mode)


def kl_loss(
    logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor, kl_type: str, mode: str
) -> torch.Tensor:
    """verl's KL loss to the reference policy, aggregated like the policy loss."""
    from verl.trainer.ppo.core_algos import kl_penalty

    return agg(kl_penalty(logp, ref_logp, kl_type), mask, mode)


def scorer() -> tuple[Callable[..., dict[str, Any]], str]:
    """The reward function and its name (the verl path's custom reward function)."""
    from riskrl.rewards import compute_score

    return compute_score, "riskrl.rewards.compute_score"
