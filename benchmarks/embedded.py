"""Embedded backend benchmark: SFT time, base Pass@k, RL step time, evaluation time, and the
estimator study (Pass@k after RL, per estimator x learning rate x seed). Not run in CI.

    .venv/bin/python benchmarks/embedded.py                   # timings + base Pass@k
    .venv/bin/python benchmarks/embedded.py --study           # + 3 estimators x 2 lr x 3 seeds
    .venv/bin/python benchmarks/embedded.py --quick           # tiny budgets, a smoke run

Timings depend on what else runs on the machine: on a shared 2-core box run it alone.
Results: a Markdown report on stdout and ``--out``/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from riskrl.embedded.data import load_examples
from riskrl.embedded.model import ModelConfig, init_model
from riskrl.embedded.runtime import set_threads
from riskrl.embedded.sampler import EmbeddedSampler
from riskrl.embedded.sft import SFTConfig, run_sft
from riskrl.embedded.task import TaskConfig, check_answer, write_split
from riskrl.embedded.trainer import TrainConfig, train
from riskrl.io import write_json

KS = (1, 2, 4, 8, 16)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k as a stable product (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def evaluate(model_dir: Path, test: Path, n: int, seed: int = 0, threads: int = 2) -> dict[str, float]:
    """Pass@k (k = 1..n) at temperature 1 on the held-out problems, plus the time it took."""
    set_threads(threads)
    rows = load_examples(test)
    sampler = EmbeddedSampler(model_dir, device="cpu")
    t0 = time.perf_counter()
    out = sampler.sample([r.prompt for r in rows], n=n, temperature=1.0, top_p=1.0, max_tokens=6, seed=seed)
    seconds = time.perf_counter() - t0
    correct = [sum(check_answer(t, r.ground_truth) for t, _ in o) for r, o in zip(rows, out, strict=True)]
    res = {f"pass@{k}": float(np.mean([pass_at_k(n, c, k) for c in correct])) for k in KS if k <= n}
    res["eval_seconds"] = seconds
    res["samples_per_s"] = len(rows) * n / seconds
    return res


def _train_job(cfg: TrainConfig) -> dict:
    return train(cfg)


def step_stats(run_dir: Path, skip: int = 2) -> dict[str, float]:
    import pandas as pd

    t = pd.read_csv(run_dir / "train_timing.csv").iloc[skip:]
    return {
        "step_s": float(t["time_step"].mean()),
        "sample_s": float(t["time_sample"].mean()),
        "update_s": float(t["time_update"].mean()),
        "sampled_tok_s": float(t["sampled_tokens_per_s"].mean()),
        "trained_tok_s": float(t["trained_tokens_per_s"].mean()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="outputs/bench_embedded")
    ap.add_argument("--quick", action="store_true", help="tiny budgets (smoke run)")
    ap.add_argument("--study", action="store_true", help="also run the estimator x lr x seed study")
    ap.add_argument("--sft-steps", type=int, default=None)
    ap.add_argument("--rl-steps", type=int, default=100)
    ap.add_argument("--timing-steps", type=int, default=20)
    ap.add_argument("--lrs", default="3e-5,3e-4")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--estimators", default="grpo,rs_grpo,riskpo")
    ap.add_argument("--eval-n", type=int, default=16)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--report-only", action="store_true", help="print the report of an earlier --out")
    args = ap.parse_args()
    if args.report_only:
        print(report(json.loads((Path(args.out) / "results.json").read_text())))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    task = TaskConfig()
    sft_cfg = SFTConfig()
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()}}

    # data + init model
    train_pq, test_pq = out / "data" / "train.parquet", out / "data" / "test.parquet"
    write_split(train_pq, 7000, 0, "train", **vars(task))  # of the 7249 train problems
    write_split(test_pq, 50 if quick else args.n_test, 1, "test", **vars(task))
    init_model(ModelConfig(), out / "init")

    # SFT (2 threads, the whole machine)
    steps = args.sft_steps or (20 if quick else sft_cfg.steps)
    s = run_sft(
        SFTConfig(
            model=str(out / "init"), data=str(train_pq), out=str(out / "base"), steps=steps, num_threads=2
        )
    )
    results["sft"] = {
        "steps": steps,
        "steps_run": s["steps_run"],
        "held_out_acc": s["held_out_acc"],
        "seconds": s["seconds"],
        "final_loss": s["final_loss"],
    }
    base = evaluate(out / "base", test_pq, args.eval_n)
    results["base"] = base

    # RL step time: one run with 2 threads, then two 1-thread runs side by side
    tsteps = 4 if quick else args.timing_steps
    common = dict(model=str(out / "base"), data=str(train_pq), steps=tsteps, save_every=0, tensorboard=False)
    train(TrainConfig(**common, out=str(out / "t2"), num_threads=2, estimator="riskpo", progress=True))
    results["rl_2threads"] = step_stats(out / "t2", skip=1 if quick else 2)
    cfgs = [
        TrainConfig(
            **common, out=str(out / f"t1_{i}"), num_threads=1, estimator="riskpo", seed=i, progress=False
        )
        for i in range(2)
    ]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as ex:
        list(ex.map(_train_job, cfgs))
    results["rl_2x1thread"] = [step_stats(out / f"t1_{i}", skip=1 if quick else 2) for i in range(2)]

    if args.study:
        results["study"] = study(args, out, train_pq, test_pq, quick)
    results["machine"]["load_after"] = os.getloadavg()
    write_json(out / "results.json", results)
    print(report(results))
    return 0


def study(args: argparse.Namespace, out: Path, train_pq: Path, test_pq: Path, quick: bool) -> list[dict]:
    """Every estimator x lr x seed as a Ray task (1 CPU each, local head), then Pass@k of each."""
    from riskrl.embedded.ray_runner import run_training_on_ray

    cfgs = []
    for est in args.estimators.split(","):
        for lr in map(float, args.lrs.split(",")):
            for seed in map(int, args.seeds.split(",")):
                cfgs.append(
                    TrainConfig(
                        model=str(out / "base"),
                        data=str(train_pq),
                        out=str(out / "study" / f"{est}_lr{lr:g}_s{seed}"),
                        estimator=est,
                        lr=lr,
                        seed=seed,
                        steps=3 if quick else args.rl_steps,
                        save_every=0,
                        tensorboard=False,
                        progress=False,
                    )
                )
    t0 = time.perf_counter()
    infos = run_training_on_ray(cfgs, num_cpus_per_run=1)
    train_seconds = time.perf_counter() - t0
    rows = []
    for cfg, info in zip(cfgs, infos, strict=True):
        ev = evaluate(Path(cfg.out) / "model", test_pq, args.eval_n)
        final = info["final"]
        rows.append(
            {
                "estimator": cfg.estimator,
                "lr": cfg.lr,
                "seed": cfg.seed,
                "mode": info["mode"],
                "entropy_last": final.get("entropy"),
                "reward_last": final.get("reward_mean"),
                "study_train_seconds": train_seconds,
                **ev,
            }
        )
    return rows


def report(r: dict) -> str:
    lines = ["## Embedded benchmark", "", f"machine: {r['machine']}", ""]
    lines += ["| stage | figure |", "|---|---|"]
    lines.append(
        f"| SFT ({r['sft'].get('steps_run', r['sft']['steps'])} of at most {r['sft']['steps']} steps, 2 threads) | "
        f"{r['sft']['seconds']:.1f} s, final loss {r['sft']['final_loss']:.3f}, "
        f"held-out accuracy at stop {r['sft'].get('held_out_acc') or float('nan'):.3f} |"
    )
    b = r["base"]
    lines.append(
        f"| evaluation (held-out x {max(int(k.split('@')[1]) for k in b if k.startswith('pass@'))} samples) | "
        f"{b['eval_seconds']:.1f} s ({b['samples_per_s']:.0f} samples/s) |"
    )
    t = r["rl_2threads"]
    lines.append(
        f"| RL step 32x8, one run, 2 threads | {t['step_s']:.3f} s (sample {t['sample_s']:.3f}, update {t['update_s']:.3f}); "
        f"{t['sampled_tok_s']:.0f} sampled tok/s, {t['trained_tok_s']:.0f} trained tok/s |"
    )
    for i, t in enumerate(r["rl_2x1thread"]):
        lines.append(
            f"| RL step 32x8, side-by-side run {i}, 1 thread | {t['step_s']:.3f} s (sample {t['sample_s']:.3f}, "
            f"update {t['update_s']:.3f}); {t['sampled_tok_s']:.0f} sampled tok/s, {t['trained_tok_s']:.0f} trained tok/s |"
        )
    ks = [k for k in b if k.startswith("pass@")]
    lines += [
        "",
        "| policy | " + " | ".join(ks) + " |",
        "|---" * (len(ks) + 1) + "|",
        "| base | " + " | ".join(f"{b[k]:.3f}" for k in ks) + " |",
    ]
    if "study" in r:
        import pandas as pd

        df = pd.DataFrame(r["study"])
        for (est, lr), g in df.groupby(["estimator", "lr"], sort=False):
            cells = [f"{g[k].mean():.3f} ± {g[k].std(ddof=1) if len(g) > 1 else 0:.3f}" for k in ks]
            lines.append(f"| {est} lr {lr:g} ({len(g)} seeds) | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"study wall time (training, Ray, 1 CPU per run): {df['study_train_seconds'].iloc[0]:.0f} s",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
