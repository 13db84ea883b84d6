"""train: one variant's (lr x seed) runs, as parallel Ray tasks (embedded) or verl jobs (GPUs)."""

from __future__ import annotations

from pathlib import Path

from riskrl.config import Params, Variant
from riskrl.pipeline.data_steps import benchmark_files, train_files
from riskrl.pipeline.outputs import (
    check_backend,
    check_cluster,
    check_model,
    check_parquet,
    plan_resume,
    preflight,
    remove_stale,
)
from riskrl.pipeline.paths import Paths, run_name
from riskrl.pipeline.stage import StageError


def check_variant(p: Params, variant: str) -> Variant:
    """The resolved variant ``variant`` of train.variants; StageError (one line) if absent."""
    if variant not in p.train.variants:
        raise StageError(f"variant {variant!r} is not in train.variants ({', '.join(p.train.variants)})")
    return p.train.variant(variant)


def _cells(p: Params, variant: str) -> list[tuple[float, int]]:
    return [(lr, seed) for (name, lr, seed) in p.train.grid() if name == variant]


def train(p: Params, paths: Paths, variant: str, progress: bool = True) -> list[dict]:
    """Train every (lr, seed) of ``variant`` into runs/<variant>/<lr..._s...>/."""
    check_variant(p, variant)
    out_root = paths.runs(variant)
    # nothing is deleted before the stage knows it can run; runs resume in place (riskrl/pipeline/outputs.py)
    preflight_train(p, paths)
    if p.backend == "verl":
        jobs = [(out_root / run_name(lr, seed), verl_overrides(p, paths, variant, lr, seed))
                for lr, seed in _cells(p, variant)]
        return train_verl(p, jobs, variant)  # verl resumes each run (trainer.resume_mode=auto)
    from riskrl.cluster import ray_session
    from riskrl.embedded.ray_runner import run_training_on_ray

    data = train_files(p, paths)[0]
    configs = plan_resume([
        p.train.run_config(variant, lr, seed, model=str(paths.base_model), data=str(data),
                           out=str(out_root / run_name(lr, seed)), progress=False)
        for lr, seed in _cells(p, variant)
    ])
    with ray_session(p.cluster.address, num_cpus=p.cluster.local_cpus, connect_timeout_s=p.cluster.connect_timeout_s,
                     share=p.cluster.share_head):
        results = run_training_on_ray(configs, num_cpus_per_run=p.cluster.cpus_per_run, progress=progress)
    remove_stale(out_root, [Path(c.out).name for c in configs])  # a finished grid never mixes with an old one
    return results


def preflight_train(p: Params, paths: Paths) -> None:
    """Inputs readable, backend possible here, cluster reachable: before any run folder is touched."""
    hint = "run the prepare stage again (dvc repro prepare)"
    checks = [lambda f=f: check_parquet(f, "training data", hint) for f in train_files(p, paths)]
    if p.backend == "embedded":
        checks.append(lambda: check_model(paths.base_model, "run the sft stage first (dvc repro sft)"))
    preflight(lambda: check_backend(p, "train"), lambda: check_cluster(p), *checks)  # the machine first


# ---------------------------------------------------------------------------------------- verl

def _rewards_file() -> str:
    import riskrl.rewards

    return str(Path(riskrl.rewards.__file__).resolve())


def _hydra(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def verl_overrides(p: Params, paths: Paths, variant: str, lr: float, seed: int) -> list[str]:
    """Hydra overrides for ``python -m riskrl.verl``: the variant's estimator and every option
    mapped to verl's ``algorithm.*`` keys (``algorithm.<estimator>.<key>`` for riskrl's
    estimators, ``algorithm.norm_adv_by_std_in_grpo``), plus data, model, sizes and the run's directory."""
    v = p.verl
    var = p.train.variant(variant)
    out = (paths.runs(variant) / run_name(lr, seed)).resolve()
    train = ",".join(str(f.resolve()) for f in train_files(p, paths))
    val = ",".join(str(f.resolve()) for f in benchmark_files(p, paths).values())
    ov = [
        f"algorithm.adv_estimator={var.estimator}",
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
        f"trainer.experiment_name={variant}-{run_name(lr, seed)}", "trainer.logger=[console,file]",
        "trainer.resume_mode=auto",  # a killed stage continues from verl's newest checkpoint (+ RiskPO tracker)
        f"reward.custom_reward_function.path={_rewards_file()}",
        "reward.custom_reward_function.name=compute_score",
        f"algorithm.norm_adv_by_std_in_grpo={_hydra(var.norm_adv_by_std_in_grpo)}",
    ]
    ov += [f"algorithm.{var.estimator}.{k}={_hydra(val)}" for k, val in var.options.items()]
    if p.cluster.address:
        ov.append(f"+ray_kwargs.ray_init.address={p.cluster.address}")
    return ov + list(v.overrides)


def train_verl(p: Params, jobs: list[tuple[Path, list[str]]], variant: str) -> list[dict]:
    """Each grid cell is one ``python -m riskrl.verl`` run: a Ray job on the cluster when
    ``cluster.address`` (or ``$RAY_ADDRESS``) names one, else a local subprocess (it needs GPUs);
    ``jobs`` holds (run directory, Hydra overrides) per cell."""
    from riskrl.pipeline.verl_jobs import VerlRun, run_verl

    var = p.train.variant(variant)
    runs = []
    for run_dir, overrides in jobs:
        cell = next((lr, seed) for lr, seed in _cells(p, variant) if run_name(lr, seed) == run_dir.name)
        name = f"{variant}/{run_dir.name}"
        runs.append(VerlRun(name=name, overrides=overrides, out=Path(run_dir).resolve(),
                            meta={"variant": variant, "estimator": var.estimator, "lr": cell[0],
                                  "seed": cell[1], "name": name}))
    return run_verl(p, runs, what=f"train ({variant}, backend verl)")
