"""Advantage estimators: RS-GRPO, RiskPO, Pass@k Training and PKPO, per response and as verl entries.

The per-response functions need only torch. ``riskrl.estimators.registry`` registers ``rs_grpo``,
``riskpo``, ``passk`` and ``pkpo`` with verl's ``register_adv_est``; the ``verl.plugins`` entry
point (``riskrl.verl_plugin``) imports it when verl's registry module is first imported, and the
registry names below are loaded from it on first use. Math: docs/estimators.md.
"""

from riskrl.estimators.options import (
    ESTIMATOR_OPTIONS,
    RISKPO_PRESETS,
    PassKOptions,
    PKPOOptions,
    RiskPOOptions,
    RSGRPOOptions,
    parse_passk,
    parse_pkpo,
    parse_riskpo,
    parse_rs_grpo,
)
from riskrl.estimators.passk import passk_advantage
from riskrl.estimators.pkpo import pkpo_advantage
from riskrl.estimators.riskpo import riskpo_advantage
from riskrl.estimators.rs_grpo import rs_grpo_advantage
from riskrl.estimators.tracker import LEVELS, QuantileTracker

_REGISTRY_NAMES = (
    "compute_passk_outcome_advantage",
    "compute_pkpo_outcome_advantage",
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
    "ESTIMATOR_OPTIONS",
    "LEVELS",
    "PKPOOptions",
    "PassKOptions",
    "RISKPO_PRESETS",
    "QuantileTracker",
    "RSGRPOOptions",
    "RiskPOOptions",
    "parse_passk",
    "parse_pkpo",
    "parse_riskpo",
    "parse_rs_grpo",
    "passk_advantage",
    "pkpo_advantage",
    "riskpo_advantage",
    "rs_grpo_advantage",
    *_REGISTRY_NAMES,
]
