"""train: one estimator's (lr x seed) runs, as parallel Ray tasks (embedded) or verl jobs (GPUs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from riskrl.config import Params
from riskrl.pipeline.data_steps import benchmark_files, train_files
from riskrl.pipeline.paths import Paths, run_name
from riskrl.pipeline.stage import StageError


def check_estimator(p: Params, estimator: str) -> None:
    if estimator not in p.train.estimators:
        raise StageError(f"estimator {estimator!r} is not in train.estimators ({', '.join(p.train.estimators)})")


def train(p: Params, paths: Paths, estimator: str, progress: bool = True) -> list[dict]:
    check_estimator(p, estimator)
    out_root = paths.runs(estimator)
    if out_root.exists():
        shutil.rmtree(out_root)  # DVC removes stage outs too; a fresh grid never mixes with an old one
    if p.backend == "verl":
        return train_verl(p, paths, estimator)
    from riskrl.cluster import ray_session
    from riskrl.embedded.ray_runner import run_training_on_ray

    data = train_files(p, paths)[0]
    configs = [
        p.train.run_config(estimator, lr, seed, model=str(paths.base_model), data=str(data),
                           out=str(out_root / run_name(lr, seed)), progress=False)
        for (_, lr, seed) in [c for c in p.train.grid() if c[0] == estimator]
    ]
    with ray_session(p.cluster.address, num_cpus=p.cluster.local_cpus, connect_timeout_s=p.cluster.connect_timeout_s):
        return run_training_on_ray(configs, num_cpus_per_run=p.cluster.cpus_per_run, progress=progress)


# ---------------------------------------------------------------------------------------- verl

def _rewards_file() -> str:
    import riskrl.rewards

    return str(Path(riskrl.rewards.__file__).resolve())


def verl_overrides(p: Params, paths: Paths, estimator: str, lr: float, seed: int) -> list[str]:
    """Hydra overrides for ``python -m riskrl.verl``: every estimator option of params.yaml
    mapped to verl's ``algorithm.*`` keys, plus data, model, sizes and the run's directory."""
    v = p.verl
    out = (paths.runs(estimator) / run_name(lr, seed)).resolve()
    train = ",".join(str(f.resolve()) for f in train_files(p, paths))
    val = ",".join(str(f.resolve()) for f in benchmark_files(p, paths).values())
    ov = [
        f"algorithm.adv_estimator={estimator}",
        f"data.train_files=[{train}]", f"data.val_files=[{val}]",
        f"data.train_batch_size={v.train_batch_size}", f"data.max_prompt_length={v.max_prompt_length}",
        f"data.max_response_length={v.max_response_length}", f"data.seed={seed}",
        f"actor_rollout_ref.model.path={v.model_path}", f"actor_rollout_ref.actor.optim.lr={lr}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={v.ppo_mini_batch_size}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={v.micro_batch_size_per_gpu}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={v.micro_batch_size_per_gpu}",
        f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={v.micro_batch_size_per_gpu}",
        "actor_rollout_ref.rollout.name=vllm", f"actor_rollout_ref.rollout.n={v.rollout_n}",
        "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]",
        f"trainer.n_gpus_per_node={v.n_gpus_per_node}", f"trainer.nnodes={v.nnodes}",
        f"trainer.total_epochs={v.total_epochs}", f"trainer.default_local_dir={out}",
        f"trainer.experiment_name={estimator}-{run_name(lr, seed)}", "trainer.logger=[console,file]",
        f"reward.custom_reward_function.path={_rewards_file()}",
        "reward.custom_reward_function.name=compute_score",
    ]
    if estimator == "grpo":
        ov.append(f"algorithm.norm_adv_by_std_in_grpo={str(p.train.grpo.norm_adv_by_std_in_grpo).lower()}")
    elif estimator == "rs_grpo":
        ov.append(f"algorithm.rs_grpo.beta={p.train.rs_grpo.beta}")
    else:
        opts = p.train.riskpo.model_dump()
        ov.append(f"algorithm.norm_adv_by_std_in_grpo={str(opts.pop('norm_adv_by_std_in_grpo')).lower()}")
        ov += [f"algorithm.riskpo.{k}={str(val).lower() if isinstance(val, bool) else val}" for k, val in opts.items()]
    if p.cluster.address:
        ov.append(f"+ray_kwargs.ray_init.address={p.cluster.address}")
    return ov + list(v.overrides)


def train_verl(p: Params, paths: Paths, estimator: str) -> list[dict]:
    """Each grid cell is one ``python -m riskrl.verl`` job on the cluster (it needs GPUs)."""
    from riskrl.cluster import ray_session, require_gpus

    gpus = p.verl.n_gpus_per_node * p.verl.nnodes
    with ray_session(p.cluster.address, num_cpus=p.cluster.local_cpus, connect_timeout_s=p.cluster.connect_timeout_s):
        require_gpus(gpus, what=f"train ({estimator}, backend verl)")
    results = []
    for _, lr, seed in [c for c in p.train.grid() if c[0] == estimator]:
        cmd = [sys.executable, "-m", "riskrl.verl", *verl_overrides(p, paths, estimator, lr, seed)]
        proc = subprocess.run(cmd)
        if proc.returncode:
            raise StageError(f"verl run {estimator} {run_name(lr, seed)} failed (exit {proc.returncode})")
        results.append({"estimator": estimator, "lr": lr, "seed": seed})
    return results
