"""Advantage estimators: RS-GRPO, RiskPO, Pass@k Training and PKPO, per response and as verl entries.

The per-response functions need only torch, imported when one of them is first used.
``riskrl.estimators.registry`` registers ``rs_grpo``, ``riskpo``, ``passk`` and ``pkpo`` with
verl's ``register_adv_est``; the ``verl.plugins`` entry point (``riskrl.verl_plugin``) imports it
when verl's registry module is first imported, and the registry names below are loaded from it
on first use. Math: docs/estimators.md.
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

# torch-backed names, imported on first use: the params schema reads ESTIMATOR_OPTIONS in every
# stage, and importing torch for it would cost each stage about 2 s
_LAZY = {
    "passk_advantage": "riskrl.estimators.passk",
    "pkpo_advantage": "riskrl.estimators.pkpo",
    "riskpo_advantage": "riskrl.estimators.riskpo",
    "rs_grpo_advantage": "riskrl.estimators.rs_grpo",
    "LEVELS": "riskrl.estimators.tracker",
    "QuantileTracker": "riskrl.estimators.tracker",
}
_REGISTRY_NAMES = (
    "compute_passk_outcome_advantage",
    "compute_pkpo_outcome_advantage",
    "compute_riskpo_outcome_advantage",
    "compute_rs_grpo_outcome_advantage",
    "get_process_tracker",
    "reset_process_tracker",
)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
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
