"""Time a fresh `dvc repro` of the default embedded study and the no-op rerun, or profile
its components and project the study's wall time.

    python benchmarks/pipeline.py [--repo .] [--work DIR] [--set key=value ...]
    python benchmarks/pipeline.py --profile [--set key=value ...] [--steps 6] [--problems 200]
    python benchmarks/pipeline.py --flow [--micro] [--set key=value ...]

``--profile`` measures, in one process on a random policy of params.yaml's model (step and
sampling costs do not depend on what the policy knows: answers are fixed-width): a local Ray
head's start and stop, a stage process's start (interpreter + imports), one RL step of
``train.prompts_per_step`` x ``train.n`` (and of half the prompts) with one thread, sampling
``evaluate.n`` answers per problem with one thread, and SFT steps; then it projects the wall
time of a fresh `dvc repro` of params.yaml (with ``--set``) on 2 cores, 2 runs side by side.
On a loaded machine read the ratios, not the seconds.

Clones the repository's committed HEAD into a temporary directory (so nothing is cached),
runs `dvc repro` there with this venv's `python` and `dvc`, and prints the wall time per stage
(from DVC's stage start lines), the stages' own work (their "done in" lines), the overhead
(DVC + process start + imports + Ray heads = wall - work) and the no-op rerun time.

``--flow`` then times the Prefect flow (flows/study.py, against a temporary Prefect server) on
the same study: a scheduled run of the committed, up-to-date baseline (every stage checked out
from the cache, nothing recomputed), and a run in a second clone with an empty DVC cache (every
stage computed), whose wall time it prints as a ratio to the plain `dvc repro` above.
``--micro`` studies the tests' micro study (tests/pipeline/conftest.py) instead of params.yaml.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def run_timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, list[tuple[float, str]]]:
    """Run ``cmd``, returning its wall time and (time since start, line) for every output line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append((time.perf_counter() - t0, line.rstrip()))
    if proc.wait():
        tail = "\n".join(ln for _, ln in lines[-30:])
        raise SystemExit(f"{' '.join(cmd)} failed:\n{tail}")
    return time.perf_counter() - t0, lines


def _mean_step(run_dir: Path, skip: int = 1) -> float:
    import pandas as pd

    t = pd.read_csv(run_dir / "train_timing.csv")
    return float(t["time_step"].iloc[skip:].mean())


def profile(args: argparse.Namespace) -> None:
    """Per-component costs of the study and the projection of a fresh `dvc repro` (2 cores)."""
    import dataclasses
    import math

    from riskrl.config import load_params, set_overrides
    from riskrl.embedded.model import init_model
    from riskrl.embedded.runtime import set_threads
    from riskrl.embedded.sampler import EmbeddedSampler
    from riskrl.embedded.sft import run_sft
    from riskrl.embedded.task import generate_rows, write_split
    from riskrl.embedded.trainer import train

    raw = set_overrides(yaml.safe_load(Path(args.repo, "params.yaml").read_text()), args.overrides)
    tmp = Path(tempfile.mkdtemp(prefix="riskrl-profile-"))
    (tmp / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    p = load_params(tmp / "params.yaml")
    set_threads(1)
    task = dataclasses.asdict(p.task)
    write_split(tmp / "train.parquet", 2000, 0, "train", **task)
    model = init_model(p.model, tmp / "init")
    costs: dict[str, float] = {}

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import riskrl.pipeline.train_steps, riskrl.embedded.trainer, "
                    "riskrl.embedded.algorithm, verl.trainer.ppo.core_algos"], check=True)
    costs["stage process start (imports)"] = time.perf_counter() - t0

    from riskrl.cluster import ray_session

    t0 = time.perf_counter()
    with ray_session(None, num_cpus=p.cluster.local_cpus):
        pass
    costs["Ray local head start + stop"] = time.perf_counter() - t0

    run = p.train.run_config(next(iter(p.train.variants)), p.train.lrs[0], 0, model=str(model),
                             data=str(tmp / "train.parquet"), out="", progress=False)
    ppp = run.prompts_per_step
    for per_step in (ppp, max(1, ppp // 2)):
        out = tmp / f"rl{per_step}"
        cfg = dataclasses.replace(run, out=str(out), steps=args.steps, prompts_per_step=per_step, save_every=0,
                                  tensorboard=False, num_threads=1)
        train(cfg)
        costs[f"RL step {per_step} x {run.n} (1 thread)"] = _mean_step(out)

    ev = p.evaluate
    rows = generate_rows(args.problems, 1, "test", **task)
    prompts = [r["prompt"] for r in rows]
    sampler = EmbeddedSampler(model, device="cpu", batch_size=ev.batch_size)
    t0 = time.perf_counter()
    sampler.sample(prompts, n=ev.n, temperature=ev.temperature, top_p=ev.top_p, max_tokens=ev.max_tokens, seed=0)
    per_problem = (time.perf_counter() - t0) / len(prompts)
    n_problems = sum(b.n or 500 for b in p.data.benchmarks) if ev.max_problems is None else ev.max_problems
    costs[f"sampling {ev.n} answers per problem (1 thread), per problem"] = per_problem

    sft = p.sft_config(model=str(model), data=str(tmp / "train.parquet"), out=str(tmp / "sft"),
                       progress=False, num_threads=1)
    sft = dataclasses.replace(sft, steps=args.steps * 2, target_acc=0.0, eval_every=args.steps * 2)
    t0 = time.perf_counter()
    run_sft(sft)
    costs["SFT step (1 thread)"] = (time.perf_counter() - t0) / sft.steps

    console = Console()
    table = Table(title="component costs (one process, 1 thread each)")
    table.add_column("component")
    table.add_column("s", justify="right")
    table.add_column("x RL step", justify="right")
    step = costs[f"RL step {ppp} x {run.n} (1 thread)"]
    for name, sec in costs.items():
        table.add_row(name, f"{sec:.3f}", f"{sec / step:.2f}")
    console.print(table)

    # projection: 2 cores, runs of cpus_per_run=1 two at a time; SFT with its own threads stops near step 320
    slots = max(1, int(2 // p.cluster.cpus_per_run))
    V, cells = len(p.train.variants), len(p.train.lrs) * len(p.train.seeds)
    waves = math.ceil(cells / slots)
    ray, start = costs["Ray local head start + stop"], costs["stage process start (imports)"]
    eval_run = per_problem * n_problems
    parts = {
        "train stages (RL steps)": V * waves * run.steps * step,
        "evaluate stages (sampling)": V * waves * eval_run + eval_run,
        "Ray heads (train + evaluate + evaluate_base)": (2 * V + 1) * ray,
        "stage process starts": (2 * V + 7) * start,
        "SFT (320 steps, 1 thread)": 320 * costs["SFT step (1 thread)"],
    }
    total = sum(parts.values())
    table = Table(title=f"projected fresh `dvc repro`: {V} variants x {cells} runs, {run.steps} steps of "
                        f"{ppp} x {run.n}, {n_problems} problems x {ev.n} samples, 2 cores")
    table.add_column("part")
    table.add_column("s", justify="right")
    table.add_column("share", justify="right")
    for name, sec in parts.items():
        table.add_row(name, f"{sec:.0f}", f"{100 * sec / total:.0f}%")
    table.add_row("total (without DVC's own overhead, report, bandit, data stages)", f"{total:.0f}", "100%")
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", action="store_true", help="per-component costs and a projection, no dvc repro")
    ap.add_argument("--flow", action="store_true", help="then time the Prefect flow on the same study")
    ap.add_argument("--micro", action="store_true", help="the tests' micro study instead of params.yaml")
    ap.add_argument("--steps", type=int, default=6, help="--profile: RL steps per timing run")
    ap.add_argument("--problems", type=int, default=200, help="--profile: problems to sample")
    ap.add_argument("--repo", default=str(ROOT))
    ap.add_argument("--work", default=None, help="clone here (default: a temporary directory)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="params.yaml key=value")
    args = ap.parse_args()
    if args.profile:
        return profile(args)
    work = Path(args.work or tempfile.mkdtemp(prefix="riskrl-bench-")) / "study"
    subprocess.run(["git", "clone", "-q", args.repo, str(work)], check=True)
    if args.overrides or args.micro:
        from riskrl.config import set_overrides

        params = yaml.safe_load((work / "params.yaml").read_text())
        if args.micro:
            sys.path.insert(0, str(ROOT))
            from tests.pipeline.conftest import micro_params

            params = micro_params()
        params = set_overrides(params, args.overrides)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONWARNINGS": "ignore",
           "RAY_USAGE_STATS_ENABLED": "0", "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(work)}  # the clone's riskrl, not the editable install's checkout
    env.pop("RAY_ADDRESS", None)
    if args.flow:  # the flow studies a commit: the params, and a clone of them with nothing computed
        _commit(work, "study params")
        subprocess.run(["git", "clone", "-q", str(work), str(work.parent / "fresh")], check=True)
    total, lines = run_timed([str(BIN / "dvc"), "repro"], work, env)
    starts = [(t, m.group(1)) for t, ln in lines if (m := re.match(r"Running stage '([^']+)'", ln))]
    work_s = {}
    for _, ln in lines:
        if m := re.match(r"stage (\S+): done in ([\d.]+)s", ln):
            work_s.setdefault(m.group(1), []).append(float(m.group(2)))
    noop, noop_lines = run_timed([str(BIN / "dvc"), "repro"], work, env)
    up_to_date = any("up to date" in ln for _, ln in noop_lines)

    console = Console()
    table = Table(title=f"fresh `dvc repro` of {work} ({os.cpu_count()} cores)")
    for col in ("stage", "wall s", "stage's own work s"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    counters: dict[str, int] = {}
    sum_work = 0.0
    for i, (t, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        base = name.split("@")[0]
        k = counters.get(base, 0)
        counters[base] = k + 1
        w = work_s.get(base, [])[k] if k < len(work_s.get(base, [])) else float("nan")
        sum_work += 0 if w != w else w
        table.add_row(name, f"{end - t:.1f}", f"{w:.1f}")
    table.add_row("total", f"{total:.1f}", f"{sum_work:.1f}")
    console.print(table)
    console.print(f"overhead (DVC, process start and imports, Ray heads): {total - sum_work:.1f} s "
                  f"= {100 * (total - sum_work) / total:.1f}% of the study")
    console.print(f"no-op rerun: {noop:.1f} s ({'up to date' if up_to_date else 'NOT up to date'})")
    if args.flow:
        flow_runs(work, work.parent / "fresh", total, console)


def _commit(repo: Path, message: str) -> None:
    for cmd in (["git", "add", "-A"], ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                                        "commit", "-qm", message]):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True)


def flow_runs(work: Path, fresh: Path, plain_s: float, console: Console) -> None:
    """The flow on ``work`` (its `dvc repro` done): the baseline as a scheduled run would see it; and
    on ``fresh`` (the same params, nothing computed, no cache), as a ratio to the plain `dvc repro`."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # else its telemetry write races the harness
    from prefect.testing.utilities import prefect_test_harness

    from flows.study import study

    _commit(work, "study results")  # what a scheduled run studies: the committed, reproduced baseline
    table = Table(title="Prefect flow (flows/study.py), one DVC experiment a run")
    for col in ("run", "stages ran / up to date", "wall s", "in `dvc repro -s` s", "stages' own work s", "vs plain repro"):
        table.add_column(col, justify="left" if col == "run" else "right")
    with prefect_test_harness():
        for label, repo in (("scheduled run of the up-to-date baseline", work), ("from scratch, empty cache", fresh)):
            t0 = time.perf_counter()
            res = study(repo=str(repo), experiment=f"bench-{repo.name}")
            wall = time.perf_counter() - t0
            states = list(res["stages"].values())
            ran = sum(s == "ran" for s in states)
            table.add_row(label, f"{ran} / {len(states) - ran}", f"{wall:.1f}", f"{res['timing']['repro_s']:.1f}",
                          f"{res['timing']['own_s']:.1f}", f"{wall / plain_s:.2f}x" if repo == fresh else "")
    console.print(table)


if __name__ == "__main__":
    main()
