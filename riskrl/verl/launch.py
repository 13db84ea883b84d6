"""``python -m riskrl.verl``: verl's ``main_ppo`` with riskrl's config, checks and trainer.

Differences from ``python -m verl.trainer.main_ppo`` (everything else is verl's own code):

1. config ``riskrl_trainer`` (verl's ``ppo_trainer`` + the RS-GRPO/RiskPO keys, no ``+``);
2. a bad estimator key or value stops at start with one line naming the key and the range;
3. after Ray is up, verl's own resource check (``ResourcePoolManager._check_resource_available``)
   runs in the driver, before the TaskRunner starts TransferQueue and the workers, so a
   machine without GPUs stops with one line pointing to the embedded (CPU) backend;
4. the TaskRunner imports ``riskrl.verl.trainer`` so ``trainer.v1.trainer_mode=riskrl_sync``
   (the default here) logs and checkpoints the RiskPO tracker.
"""

from __future__ import annotations

import logging
import re
import sys
from types import SimpleNamespace

import hydra
from omegaconf import DictConfig, OmegaConf

from riskrl.estimators.options import ESTIMATOR_OPTIONS, parse_passk, parse_pkpo, parse_rs_grpo
from riskrl.estimators.registry import riskpo_options_from_config

logger = logging.getLogger("riskrl.verl")

_SECTIONS = dict(ESTIMATOR_OPTIONS)  # riskpo, rs_grpo, passk, pkpo
_KEY_RE = re.compile(rf"^[+~]*algorithm\.({'|'.join(_SECTIONS)})\.([^.=]+)")

GPU_HINT = (
    "the verl backend needs GPUs ({detail}); on a CPU machine use the embedded backend "
    "(backend: embedded in params.yaml, or python -m riskrl.embedded)"
)


class LaunchError(RuntimeError):
    """A configuration or environment problem, reported as one line."""


def check_override_keys(argv: list[str]) -> None:
    """Reject unknown ``algorithm.riskpo.*``/``algorithm.rs_grpo.*`` keys before Hydra does
    (Hydra's struct error spans several lines and suggests ``+``, which would hide the typo)."""
    for arg in argv:
        m = _KEY_RE.match(arg)
        if m and m.group(2) not in _SECTIONS[m.group(1)].model_fields:
            known = ", ".join(_SECTIONS[m.group(1)].model_fields)
            raise LaunchError(f"unknown key algorithm.{m.group(1)}.{m.group(2)}; known: {known}")


def validate_estimator_config(config: DictConfig) -> None:
    """One-line errors for bad estimator names, keys and values."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    name = str(config.algorithm.adv_estimator)
    builtin = {"gae", "grpo"}  # handled inline by verl's compute_advantage
    if name not in ADV_ESTIMATOR_REGISTRY and name not in builtin:
        known = ", ".join(sorted(set(ADV_ESTIMATOR_REGISTRY) | builtin))
        raise LaunchError(f"unknown algorithm.adv_estimator {name!r}; known: {known}")
    try:
        riskpo_options_from_config(config.algorithm)
        parse_rs_grpo(config.algorithm.get("rs_grpo"))
        parse_passk(config.algorithm.get("passk"))
        parse_pkpo(config.algorithm.get("pkpo"))
    except ValueError as err:
        raise LaunchError(f"algorithm.{err}") from None


def init_ray(config: DictConfig) -> None:
    """``ray.init`` as verl's ``run_ppo`` does (its runtime env merged with
    ``ray_kwargs.ray_init``), attaching to ``RAY_ADDRESS``/``ray_init.address`` if given;
    the dashboard stays off unless asked for."""
    import ray
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    if ray.is_initialized():
        return
    kwargs = OmegaConf.to_container(config.ray_kwargs.get("ray_init", {}), resolve=True) or {}
    runtime_env = OmegaConf.merge(get_ppo_ray_runtime_env(config), kwargs.pop("runtime_env", None) or {})
    kwargs["runtime_env"] = OmegaConf.to_container(runtime_env, resolve=True)
    kwargs.setdefault("include_dashboard", False)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        ray.init(**kwargs)
    except ConnectionError as err:
        raise LaunchError(f"cannot reach the Ray cluster: {str(err).splitlines()[0]}") from None


def check_gpu_resources(config: DictConfig) -> None:
    """Run verl's own resource-pool check in the driver; no GPUs -> one line."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    probe = SimpleNamespace(config=config)
    try:
        PPOTrainer._init_resource_pool_mgr(probe)  # builds verl's resource_pool_spec from the config
        probe.resource_pool_manager._check_resource_available()
    except (ValueError, ZeroDivisionError) as err:
        raise LaunchError(GPU_HINT.format(detail=str(err).splitlines()[0] or type(err).__name__)) from None


def task_runner_class(config: DictConfig):
    import ray

    if not config.trainer.use_v1:
        from verl.trainer.main_ppo_v0 import TaskRunner

        logger.warning("trainer.use_v1=false: verl's legacy trainer; the RiskPO tracker is not checkpointed there")
        return TaskRunner
    from verl.trainer.main_ppo import TaskRunnerV1

    base = TaskRunnerV1.__ray_metadata__.modified_class.__ray_actor_class__

    @ray.remote(num_cpus=1)
    class RiskTaskRunnerV1(base):
        def run(self, config):
            import riskrl.estimators.registry  # noqa: F401  (registered by the plugin too; explicit here)
            import riskrl.verl.trainer  # noqa: F401  (registers trainer_mode riskrl_sync)

            return super().run(config)

    return RiskTaskRunnerV1


def run(config: DictConfig) -> None:
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    validate_estimator_config(config)
    auto_set_device(config)
    try:
        validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    except Exception as err:  # verl's checks raise AssertionError/ValueError/Hydra errors, often multi-line
        detail = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        raise LaunchError(f"invalid verl config: {detail}") from None
    init_ray(config)
    check_gpu_resources(config)
    run_ppo(config, task_runner_class=task_runner_class(config))


@hydra.main(config_path="config", config_name="riskrl_trainer", version_base=None)
def _hydra_main(config: DictConfig) -> None:
    try:
        run(config)
    except LaunchError as err:
        sys.exit(f"riskrl: {err}")


def main() -> None:
    try:
        check_override_keys(sys.argv[1:])
    except LaunchError as err:
        sys.exit(f"riskrl: {err}")
    _hydra_main()


if __name__ == "__main__":
    main()
