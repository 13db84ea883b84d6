"""CLI: ``python -m riskrl.evaluation {metrics,sample} ...``.

    python -m riskrl.evaluation metrics --samples DIR --out-metrics metrics.json --out-plots passk.csv
    python -m riskrl.evaluation sample --engine embedded --model PATH \\
        --benchmark gsm8k=data/prepared/gsm8k/test.parquet --n 16 --out samples/
"""

from __future__ import annotations

import argparse
import sys

from riskrl.evaluation.metrics import write_metrics
from riskrl.evaluation.sampling import SAMPLERS, get_sampler, run_evaluation


def _benchmark_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--benchmark needs NAME=PATH; got '{text}'")
    return name, path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m riskrl.evaluation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser("metrics", help="pass@k / maj@k / diversity with bootstrap CIs from samples tables")
    m.add_argument(
        "--samples", required=True, help="directory of <benchmark>.parquet samples tables (or one file)"
    )
    m.add_argument("--out-metrics", required=True, help="DVC metrics JSON to write")
    m.add_argument(
        "--out-plots", default=None, help="long-format CSV (benchmark,k,metric,value,ci_low,ci_high)"
    )
    m.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples over problems")
    m.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of maj@k subsampling")
    m.add_argument(
        "--maj-subsamples", type=int, default=256, help="k-subsets per problem for maj@k (exact if fewer)"
    )

    s = sub.add_parser("sample", help="sample n responses per problem and write samples tables")
    s.add_argument("--engine", required=True, choices=sorted(SAMPLERS), help="sampling engine")
    s.add_argument("--model", required=True, help="model path or id given to the engine")
    s.add_argument(
        "--benchmark",
        action="append",
        type=_benchmark_arg,
        required=True,
        metavar="NAME=PATH",
        help="prepared benchmark parquet; repeat for several",
    )
    s.add_argument("--out", required=True, help="directory for <NAME>.parquet samples tables")
    s.add_argument("--n", type=int, default=16, help="samples per problem")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-p", type=float, default=1.0)
    s.add_argument("--max-tokens", type=int, default=1024)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-problems", type=int, default=None, help="first N problems of each benchmark")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "metrics":
            metrics = write_metrics(
                args.samples,
                args.out_metrics,
                args.out_plots,
                n_boot=args.n_boot,
                seed=args.seed,
                maj_subsamples=args.maj_subsamples,
            )
            for bench, entry in metrics.items():
                figs = "  ".join(
                    f"{k}={v:.4f}" for k, v in entry.items() if k.startswith("pass@") and "_ci" not in k
                )
                print(f"{bench:>16}  {figs}")
        else:
            sampler = get_sampler(args.engine, args.model)
            table = run_evaluation(
                sampler,
                dict(args.benchmark),
                args.n,
                temperature=args.temperature,
                top_p=args.top_p,
                max_tokens=args.max_tokens,
                seed=args.seed,
                out_dir=args.out,
                max_problems=args.max_problems,
            )
            print(f"wrote {len(table)} samples for {table['benchmark'].nunique()} benchmark(s) to {args.out}")
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
