"""Advantage estimators: RS-GRPO and RiskPO, per response and as verl registry entries.

The per-response functions need only torch. ``riskrl.estimators.registry`` registers
``rs_grpo`` and ``riskpo`` with verl's ``register_adv_est``; the ``verl.plugins`` entry point
imports it in every process that imports verl, and the registry names below are loaded from
it on first use. Math: docs/estimators.md.
"""

from riskrl.estimators.options import (
    RISKPO_PRESETS,
    RiskPOOptions,
    RSGRPOOptions,
    parse_riskpo,
    parse_rs_grpo,
)
from riskrl.estimators.riskpo import riskpo_advantage
from riskrl.estimators.rs_grpo import rs_grpo_advantage
from riskrl.estimators.tracker import LEVELS, QuantileTracker

_REGISTRY_NAMES = (
    "compute_riskpo_outcome_advantage",
    "compute_rs_grpo_outcome_advantage",
    "get_process_tracker",
    "reset_process_tracker",
)


def __getattr__(name: str):
    if name in _REGISTRY_NAMES:  # importing the registry imports verl (seconds): only when asked
        from riskrl.estimators import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'riskrl.estimators' has no attribute {name!r}")


__all__ = [
    "LEVELS",
    "RISKPO_PRESETS",
    "QuantileTracker",
    "RSGRPOOptions",
    "RiskPOOptions",
    "parse_riskpo",
    "parse_rs_grpo",
    "riskpo_advantage",
    "rs_grpo_advantage",
    *_REGISTRY_NAMES,
]
