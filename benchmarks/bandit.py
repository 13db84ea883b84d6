"""Time the full default bandit grid (docs/bandit.md): 7 betas x 5 seeds x 25,000 updates.

    .venv/bin/python benchmarks/bandit.py [--repeats 3] [--threads 1 2]  # 2 threads: see docs/bandit.md

Prints one row per torch thread count: wall time of ``run_bandit`` (min and median
over repeats) and the cost per batched update. Timings only, nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table

from riskrl.bandit import BETAS, N_SEEDS, UPDATES, run_bandit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--repeats", type=int, default=3, help="timed runs per thread count (default: %(default)s)"
    )
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1],
        help="torch thread counts, e.g. 1 2 (default: %(default)s)",
    )
    p.add_argument("--updates", type=int, default=UPDATES, help="updates per run (default: %(default)s)")
    args = p.parse_args()

    seeds = list(range(N_SEEDS))
    run_bandit(BETAS, seeds, 200)  # warm-up: first-call allocations and kernel dispatch
    table = Table(title=f"bandit grid: {len(BETAS)} betas x {len(seeds)} seeds x {args.updates} updates")
    for col in ("threads", "min s", "median s", "us / update", "mean final E[r] (beta 0 / 64)"):
        table.add_column(col.replace("[", r"\["), justify="right")
    for threads in args.threads:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run = run_bandit(BETAS, seeds, args.updates, threads=threads)
            times.append(time.perf_counter() - t0)
        final = run.curve[..., -1].mean(axis=1)  # (B,)
        table.add_row(
            str(threads),
            f"{min(times):.2f}",
            f"{statistics.median(times):.2f}",
            f"{1e6 * min(times) / max(args.updates, 1):.0f}",
            f"{final[0]:.4f} / {final[-1]:.4f}",
        )
    Console().print(table)
    print(f"torch {torch.__version__}; shared machine, timings are noisy")


if __name__ == "__main__":
    main()
