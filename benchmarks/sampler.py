"""Throughput of the embedded sampler on CPU: samples/s and tokens/s (issue 6, README table).

    .venv/bin/python benchmarks/sampler.py [--model DIR] [--problems 64] [--n 1 8 16]
        [--threads 1 2] [--max-tokens 6] [--batch-size 1024] [--repeats 3]

Without ``--model`` a freshly initialised tiny model (``riskrl.embedded`` defaults) is used;
an untrained model rarely emits EOS early, so it is the worst case (every sample runs to
``--max-tokens``). Prompts are test-split rows of the embedded task. The engine is looked up
through ``riskrl.evaluation.get_sampler("embedded", ...)``, the same path evaluation takes.
One row per (threads, n): best and median wall time of ``sample`` over repeats, samples/s and
generated tokens/s at the best time. Timings only, nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from riskrl.evaluation import get_sampler


def _prompts(problems: int, seed: int) -> list:
    from riskrl.embedded.task import generate_rows

    return [row["prompt"] for row in generate_rows(problems, seed, "test")]


def _fresh_model(root: Path) -> Path:
    from riskrl.embedded.model import ModelConfig, init_model

    return init_model(ModelConfig(), root / "model")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="embedded model directory (default: a fresh random model)")
    p.add_argument("--problems", type=int, default=64, help="prompts per call (default: %(default)s)")
    p.add_argument(
        "--n", type=int, nargs="+", default=[1, 8, 16], help="samples per prompt (default: %(default)s)"
    )
    p.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="torch threads (default: %(default)s)"
    )
    p.add_argument("--max-tokens", type=int, default=6, help="max response tokens (default: %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=1024, help="sequences per generate (default: %(default)s)"
    )
    p.add_argument("--repeats", type=int, default=3, help="timed calls per row (default: %(default)s)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or _fresh_model(Path(tmp))
        sampler = get_sampler("embedded", model, batch_size=args.batch_size)
        prompts = _prompts(args.problems, seed=0)
        kw = {"temperature": 1.0, "top_p": 1.0, "max_tokens": args.max_tokens}
        sampler.sample(prompts[:4], n=2, seed=0, **kw)  # warm-up: first-call allocations, dispatch
        title = f"embedded sampler: {args.problems} prompts, max {args.max_tokens} tokens, batch {args.batch_size}"
        table = Table(title=title)
        for col in ("threads", "n", "samples", "best s", "median s", "samples/s", "tokens/s"):
            table.add_column(col, justify="right")
        for threads in args.threads:
            torch.set_num_threads(threads)
            for n in args.n:
                times, tokens = [], 0
                for r in range(args.repeats):
                    t0 = time.perf_counter()
                    out = sampler.sample(prompts, n=n, seed=r, **kw)
                    times.append(time.perf_counter() - t0)
                    tokens = sum(t for outs in out for _, t in outs)
                best, samples = min(times), args.problems * n
                table.add_row(
                    str(threads),
                    str(n),
                    str(samples),
                    f"{best:.3f}",
                    f"{statistics.median(times):.3f}",
                    f"{samples / best:,.0f}",
                    f"{tokens / best:,.0f}",
                )
        Console().print(table)
    print(f"torch {torch.__version__}; shared machine, timings are noisy")


if __name__ == "__main__":
    main()
