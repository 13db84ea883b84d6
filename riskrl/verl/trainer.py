"""verl V1 trainer with the RiskPO tracker in its metrics and checkpoints.

verl's estimator functions get no handle on the trainer, so the RiskPO quantile tracker is one
object per process (``riskrl.estimators.get_process_tracker``): the TaskRunner actor, where the
trainer, ``fit()`` and ``compute_advantage`` all live for the whole run (VERL_NOTES §2-3).
This subclass of verl's ``PPOTrainerSync``

- starts the tracker afresh, with ``algorithm.riskpo.lr_q``;
- adds ``riskpo/q_*``, ``riskpo/a``, ``riskpo/b``, ``riskpo/mode`` ... to each step's metrics;
- saves ``global_step_N/riskpo_tracker.pt`` with every verl checkpoint (before verl writes
  ``latest_checkpointed_iteration.txt``, so a checkpoint verl resumes from always has it) and
  restores it on resume;
- when validation samples ``n > 1`` responses per prompt
  (``actor_rollout_ref.rollout.val_kwargs.n``), adds the unbiased
  ``val-core/<data_source>/pass@<k>`` (k = 1, 2, 4, ..., n) next to verl's bootstrap ``best@k``.

Registered as ``trainer.v1.trainer_mode=riskrl_sync``; verl's code tests
``trainer_mode == "sync"`` in several places, so the mode is set back to ``sync`` here.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from typing import Any

import torch
from omegaconf import open_dict
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from riskrl.estimators.registry import (
    FORK_ALIAS,
    get_process_tracker,
    reset_process_tracker,
    riskpo_options_from_config,
)
from riskrl.io import torch_save

logger = logging.getLogger("riskrl.verl")

TRACKER_FILE = "riskpo_tracker.pt"
TRAINER_MODE = "riskrl_sync"


def uses_riskpo(config) -> bool:
    return str(config.algorithm.adv_estimator) in ("riskpo", FORK_ALIAS)


def _abs(path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def save_tracker(step_dir: str) -> str:
    path = os.path.join(step_dir, TRACKER_FILE)
    torch_save(path, get_process_tracker().state_dict())
    return path


def load_tracker(step_dir: str) -> bool:
    path = os.path.join(step_dir, TRACKER_FILE)
    if not os.path.exists(path):
        return False
    # weights_only: a checkpoint can come from anyone (dvc pull); a pickle that is not plain tensors is refused
    get_process_tracker().load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return True


CORRECT_THRESHOLD = 0.5  # a sample is correct when its acc (or, without acc, its reward) is >= this


def unbiased_pass_at_k_metrics(
    data_sources: list[str],
    sample_uids: list[str],
    infos_dict: dict[str, list[Any]],
    expected_acc_counts: dict[tuple[str, str], int] | None = None,
) -> dict[str, float]:
    """``val-core/<data_source>/pass@<k>`` from the inputs of verl's ``process_validation_metrics``.

    Per data source, the correctness of a sample is its ``acc`` when the source reports ``acc``
    (verl's core variable then) and otherwise its ``reward``, thresholded at 0.5 (so {0, 1},
    booleans and {-1, 1} all work). With ``expected_acc_counts`` (verl's count of sessions per
    ``(data_source, uid)``), missing ``acc`` sessions count as incorrect samples, as verl does.
    Each prompt's ``n`` samples with ``c`` correct give the unbiased ``1 - C(n-c, k)/C(n, k)``
    (``riskrl.evaluation.passk.pass_at_k``), averaged over the source's prompts, for
    k = 1, 2, 4, ..., n (``k_values``) with n the fewest samples of any of its prompts; a source
    whose prompts have one sample each gets nothing.
    """
    from riskrl.evaluation.passk import k_values, pass_at_k

    groups: dict[str, dict[str, dict[str, list]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for i, (source, uid) in enumerate(zip(data_sources, sample_uids, strict=True)):
        for var in ("acc", "reward"):
            vals = infos_dict.get(var)
            if vals is not None and vals[i] is not None:
                groups[str(source)][str(uid)][var].append(vals[i])
    out: dict[str, float] = {}
    for source, prompts in groups.items():
        var = "acc" if any(v.get("acc") for v in prompts.values()) else "reward"
        ns, cs = [], []
        for uid, v in prompts.items():
            vals = [float(x) for x in v.get(var, [])]
            n = len(vals)
            if var == "acc" and expected_acc_counts:
                n = max(n, int(expected_acc_counts.get((source, uid), n)))
            if n == 0:
                continue
            ns.append(n)
            cs.append(sum(x >= CORRECT_THRESHOLD for x in vals))
        if not ns or min(ns) < 2:
            continue
        for k in k_values(min(ns)):
            out[f"val-core/{source}/pass@{k}"] = float(pass_at_k(ns, cs, k).mean())
    return out


@register_trainer(TRAINER_MODE)
class RiskRLTrainerSync(PPOTrainerSync):
    """verl's synchronous V1 trainer plus RiskPO tracker logging and checkpointing."""

    def __init__(self, config):
        with open_dict(config):
            config.trainer.v1.trainer_mode = "sync"
        super().__init__(config)
        self.riskpo = uses_riskpo(config)
        if self.riskpo:
            opts = riskpo_options_from_config(config.algorithm)
            reset_process_tracker().lr_q = opts.lr_q
            logger.info("riskpo: use_q_track_mode=%s (tracked quantiles of step t drive step t+1)", opts.use_q_track_mode)

    def _compute_advantage(self, batch, metrics: dict):
        batch = super()._compute_advantage(batch, metrics)
        if self.riskpo:
            metrics.update(get_process_tracker().metrics())
        return batch

    def _val_metrics_update(
        self, data_sources, sample_uids, reward_extra_infos_dict, sample_turns, expected_acc_counts=None
    ) -> dict[str, float]:
        metrics = super()._val_metrics_update(
            data_sources, sample_uids, reward_extra_infos_dict, sample_turns, expected_acc_counts=expected_acc_counts
        )
        metrics.update(
            unbiased_pass_at_k_metrics(data_sources, sample_uids, reward_extra_infos_dict, expected_acc_counts)
        )
        return metrics

    def _step_dir(self) -> str:
        return os.path.join(_abs(self.config.trainer.default_local_dir), f"global_step_{self.global_steps}")

    def _save_checkpoint(self):
        if self.riskpo:
            save_tracker(self._step_dir())
        super()._save_checkpoint()

    def _load_checkpoint(self):
        super()._load_checkpoint()  # sets self.global_steps; 0 = fresh start
        if not self.riskpo or self.global_steps == 0:
            return
        if self.config.trainer.resume_mode == "resume_path":
            step_dir = _abs(self.config.trainer.resume_from_path)
        else:
            step_dir = self._step_dir()
        if load_tracker(step_dir):
            logger.info("riskpo: tracker restored from %s", os.path.join(step_dir, TRACKER_FILE))
        else:
            logger.warning(
                "riskpo: %s has no %s; the quantile tracker starts afresh (batch quantiles on the first step)",
                step_dir, TRACKER_FILE,
            )
