"""evaluate: n samples per benchmark problem from each trained run (and the base), Pass@k metrics."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from riskrl.config import Params
from riskrl.io import atomic_path, write_json
from riskrl.pipeline.data_steps import benchmark_files
from riskrl.pipeline.outputs import (
    check_backend,
    check_cluster,
    check_model,
    check_parquet,
    preflight,
    staged_output,
)
from riskrl.pipeline.paths import Paths
from riskrl.pipeline.stage import StageError
from riskrl.pipeline.train_steps import check_variant

RUN_FILES = ("run.json", "train_metrics.csv")


def _evaluate_one(model_dir: str, out_dir: str, run_dir: str | None, benchmarks: dict[str, str],
                  ev: dict[str, Any], engine: str, threads: int, sampler_kwargs: dict[str, Any],
                  variant: str | None = None, cwd: str | None = None) -> dict:
    """Sample, score and summarise one model into ``out_dir`` (runs in a Ray worker; with vLLM it
    only coordinates: the sampler's engines are Ray tasks of their own, one per GPU group)."""
    import torch

    from riskrl.cluster import enter_driver_cwd
    from riskrl.evaluation.metrics import PROBLEMS_FILE, write_metrics
    from riskrl.evaluation.sampling import get_sampler, run_evaluation

    enter_driver_cwd(cwd)
    torch.set_num_threads(threads)
    sampler = get_sampler(engine, model_dir, **sampler_kwargs)
    with atomic_path(out_dir, is_dir=True) as tmp:
        run_evaluation(sampler, benchmarks, ev["n"], temperature=ev["temperature"], top_p=ev["top_p"],
                       max_tokens=ev["max_tokens"], seed=ev["seed"], out_dir=tmp / "samples",
                       max_problems=ev["max_problems"])
        metrics = write_metrics(tmp / "samples", tmp / "metrics.json", tmp / "passk.csv", tmp / PROBLEMS_FILE,
                                n_boot=ev["n_boot"], seed=ev["seed"])
        for name in RUN_FILES if run_dir else ():
            if (Path(run_dir) / name).exists():
                shutil.copy2(Path(run_dir) / name, tmp / name)
        if run_dir and (tmp / "run.json").exists():  # the report names runs "<variant>/<lr..._s...>"
            meta = json.loads((tmp / "run.json").read_text())
            meta["variant"] = variant or Path(run_dir).parent.name  # the report's label; estimator: verl's name
            meta.setdefault("name", f"{meta['variant']}/{Path(run_dir).name}")
            write_json(tmp / "run.json", meta)
    return {"out": out_dir, "macro": metrics.get("macro", {})}


def _model_dirs(p: Params, paths: Paths, variant: str) -> list[tuple[Path, Path]]:
    """(run dir, model dir) of every trained run of ``variant``."""
    root = paths.runs(variant)
    runs = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    if not runs:
        raise StageError(f"no trained runs under {root}; run the train stage first (dvc repro train@{variant})")
    out = []
    for run in runs:
        model = run / "model"
        if p.backend == "verl":
            steps = sorted(run.glob("global_step_*/actor/huggingface"), key=lambda x: int(x.parts[-3].split("_")[-1]))
            model = steps[-1] if steps else model
        if not (model / "config.json").is_file():
            raise StageError(f"run {run} has no final model at {model}")
        out.append((run, model))
    return out


def _run_all(p: Params, paths: Paths, jobs: list[tuple[str, str, str | None]], progress: bool,
             variant: str | None = None) -> list[dict]:
    from tqdm.auto import tqdm

    from riskrl.cluster import ray_session

    engine = "embedded" if p.backend == "embedded" else "vllm"
    ev = p.evaluate.model_dump()
    benches = {k: str(v) for k, v in benchmark_files(p, paths).items()}
    for name, path in benches.items():
        if not Path(path).is_file():
            raise StageError(f"benchmark {name} not prepared ({path}); run the prepare stage first")
    if engine == "vllm":
        # the coordinating task holds no GPU (its engines do: one Ray task per
        # eval_tensor_parallel_size GPUs), else a 1-GPU cluster would deadlock
        gpus, task_opts = p.verl.eval_tensor_parallel_size, {"num_cpus": 0, "num_gpus": 0}
        sampler_kwargs: dict[str, Any] = {"tensor_parallel_size": p.verl.eval_tensor_parallel_size}
    else:
        gpus, task_opts = 0, {"num_cpus": p.cluster.cpus_per_run, "num_gpus": 0}
        sampler_kwargs = {"batch_size": ev["batch_size"]}
    with ray_session(p.cluster.address, num_cpus=p.cluster.local_cpus, gpus=gpus, what="evaluate (vLLM)",
                     connect_timeout_s=p.cluster.connect_timeout_s, share=p.cluster.share_head):
        import ray  # not before the session: a shared head's token is read when Ray is imported

        task = ray.remote(**task_opts)(_evaluate_one)
        threads = max(1, int(p.cluster.cpus_per_run))
        refs = [task.remote(model, out, run, benches, ev, engine, threads, sampler_kwargs, variant, os.getcwd())
                for model, out, run in jobs]
        results = []
        with tqdm(total=len(refs), desc="evaluate", disable=not progress, dynamic_ncols=True) as bar:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                results.extend(ray.get(done))
                bar.update(len(done))
    return results


def evaluate(p: Params, paths: Paths, variant: str, progress: bool = True) -> dict:
    """Evaluate every run of ``variant`` into evals/<variant>/<run>/, and its summary (DVC
    metrics: Pass@k per run and the mean over seeds per learning rate) into
    metrics/evaluate_<variant>.json."""
    check_variant(p, variant)
    root = paths.evals(variant)
    models = _model_dirs(p, paths, variant)
    preflight_evaluate(p, paths, [m for _, m in models])
    with staged_output(root) as tmp:  # the old evaluations stay until the new ones are complete
        jobs = [(str(model), str(tmp / run.name), str(run)) for run, model in models]
        _run_all(p, paths, jobs, progress, variant)
        summary = summarize(tmp)
    write_json(paths.eval_metrics(variant), summary)
    return summary


def preflight_evaluate(p: Params, paths: Paths, models: list[Path]) -> None:
    """Benchmarks readable, models loadable, backend possible, cluster reachable: before any output moves."""
    hint = "run the prepare stage again (dvc repro prepare)"
    checks = [lambda f=f, n=n: check_parquet(f, f"benchmark {n}", hint) for n, f in benchmark_files(p, paths).items()]
    if p.backend == "embedded":
        checks += [lambda m=m: check_model(m, "run its stage again") for m in models]
    preflight(*checks, lambda: check_backend(p, "evaluate"), lambda: check_cluster(p))


def evaluate_base(p: Params, paths: Paths, progress: bool = True) -> dict:
    """The starting policy on the same benchmarks (the report's reference for lost/gained)."""
    model = paths.base_model if p.backend == "embedded" else Path(p.verl.model_path)
    if p.backend == "embedded" and not (model / "config.json").is_file():
        raise StageError(f"no base model at {model}; run the sft stage first")
    preflight_evaluate(p, paths, [model])
    _run_all(p, paths, [(str(model), str(paths.base_eval), None)], progress)  # written beside, then swapped
    metrics = json.loads((paths.base_eval / "metrics.json").read_text())
    write_json(paths.eval_metrics("base"), {"base": _figures(metrics)})
    return metrics


def _figures(metrics: dict) -> dict[str, float]:
    """Flat {benchmark/pass@k: value} of a metrics dict (the numbers, not the CIs)."""
    return {f"{b}/{k}": v for b, vals in metrics.items() for k, v in vals.items()
            if isinstance(v, (int, float)) and k.startswith(("pass@", "maj@"))}


def summarize(root: Path) -> dict:
    """Per run: each benchmark's pass@1, pass@k_max; per lr: the mean over seeds (DVC metrics)."""
    per_run: dict[str, dict] = {}
    by_lr: dict[str, list[dict]] = {}
    for d in sorted(x for x in root.iterdir() if (x / "metrics.json").is_file()):
        figures = _figures(json.loads((d / "metrics.json").read_text()))
        per_run[d.name] = figures
        by_lr.setdefault(d.name.split("_s")[0], []).append(figures)
    mean = {lr: {k: sum(f[k] for f in fs) / len(fs) for k in fs[0]} for lr, fs in by_lr.items()}
    return {"mean_over_seeds": mean, "runs": per_run}
