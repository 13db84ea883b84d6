"""Run embedded trainings as Ray tasks: on a cluster at ``address`` or on a local head.

``run_training_on_ray(configs, address=None, num_cpus_per_run=1)`` attaches to ``address``
(or ``$RAY_ADDRESS``) when one is given, failing in one line if it cannot be reached within
``connect_timeout_s``; otherwise it starts a local head with all of this machine's CPUs and
shuts it down afterwards. Each ``TrainConfig`` runs as one ``@ray.remote(num_cpus=...)`` task,
so Ray's scheduler decides how many runs share the machine.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from tqdm.auto import tqdm

from riskrl.cluster import check_reachable, enter_driver_cwd, parent_death_signal, ray_session
from riskrl.embedded.configs import TrainConfig, to_dict  # not the trainer: the driver needs no torch


def die_with_parent() -> bool:
    """Linux: the kernel kills this process when its parent (the node's raylet) dies.

    A stage killed with ``kill -9`` on its process group takes its local Ray head with it, but a
    worker sits in a process group of its own and Ray notices the dead raylet only after about
    2 s: long enough for a fast run to write many more checkpoints into a folder that the next
    ``dvc repro`` is already resuming from. Returns whether the signal was set.
    """
    return parent_death_signal(signal.SIGKILL)


def _train_task(cfg_dict: dict[str, Any], cwd: str | None = None) -> dict[str, Any]:
    # runs inside a Ray worker: import here, build the config, train (the tracker is reset in train())
    from riskrl.embedded.trainer import TrainConfig, train

    die_with_parent()
    enter_driver_cwd(cwd)

    return train(TrainConfig.from_dict(cfg_dict))


_check_reachable = check_reachable  # kept for callers of the old private name


def run_training_on_ray(
    configs: list[TrainConfig],
    address: str | None = None,
    num_cpus_per_run: float = 1,
    connect_timeout_s: float = 10.0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train every config as a Ray task; returns their ``run.json`` summaries in config order."""
    import ray

    if num_cpus_per_run <= 0:
        raise ValueError(f"num_cpus_per_run must be > 0, got {num_cpus_per_run}")
    for c in configs:
        if c.num_threads == 0 or c.num_threads > max(1, int(num_cpus_per_run)):
            raise ValueError(
                f"run {c.out}: num_threads={c.num_threads} must be in 1..num_cpus_per_run ({num_cpus_per_run}); "
                "more threads than reserved CPUs slows every run down"
            )
    with ray_session(address, connect_timeout_s=connect_timeout_s):
        task = ray.remote(num_cpus=num_cpus_per_run)(_train_task)
        refs = [task.remote(to_dict(c), os.getcwd()) for c in configs]
        order = {ref: i for i, ref in enumerate(refs)}
        results: list[dict[str, Any] | None] = [None] * len(refs)
        pending = list(refs)
        with tqdm(total=len(refs), desc="ray runs", disable=not progress, dynamic_ncols=True) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ref = done[0]
                try:
                    results[order[ref]] = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if getattr(e, "cause", None) is not None else e
                    raise RuntimeError(
                        f"run {configs[order[ref]].out} failed: {type(cause).__name__}: {cause}"
                    ) from None
                bar.update(1)
        return results  # type: ignore[return-value]
