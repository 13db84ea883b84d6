"""Advantage estimators: RS-GRPO and RiskPO, per response and as verl registry entries.

Importing this package registers ``rs_grpo`` and ``riskpo`` with verl's
``register_adv_est`` (the ``verl.plugins`` entry point does the same in every process that
imports verl). Math: docs/estimators.md.
"""

from riskrl.estimators.options import RISKPO_PRESETS, RiskPOOptions, RSGRPOOptions, parse_riskpo, parse_rs_grpo
from riskrl.estimators.registry import (
    compute_riskpo_outcome_advantage,
    compute_rs_grpo_outcome_advantage,
    get_process_tracker,
    reset_process_tracker,
)
from riskrl.estimators.riskpo import riskpo_advantage
from riskrl.estimators.rs_grpo import rs_grpo_advantage
from riskrl.estimators.tracker import LEVELS, QuantileTracker

__all__ = [
    "LEVELS",
    "RISKPO_PRESETS",
    "QuantileTracker",
    "RSGRPOOptions",
    "RiskPOOptions",
    "compute_riskpo_outcome_advantage",
    "compute_rs_grpo_outcome_advantage",
    "get_process_tracker",
    "parse_riskpo",
    "parse_rs_grpo",
    "reset_process_tracker",
    "riskpo_advantage",
    "rs_grpo_advantage",
]
