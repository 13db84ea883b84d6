"""CLI: ``python -m riskrl.report --runs DIR... --base DIR --out DIR``, and
``python -m riskrl.report --readme [README.md] [--out reports]``.

Each DIR of ``--runs`` is a run directory (run.json, metrics.json, samples/, train_metrics.*)
or a directory of run directories. Writes ``report.md`` and its PNGs/CSVs into ``--out`` and,
inside a Prefect flow run, the Pass@k table as a Markdown artifact.

``--readme`` builds nothing: it rewrites the results section of README.md (between
``<!-- results:begin -->`` and ``<!-- results:end -->``) from the finished report in ``--out``
(default ``reports``, what ``dvc repro`` wrote).
"""

from __future__ import annotations

import argparse
import sys

from riskrl.report.artifact import ARTIFACT_KEY, publish_prefect_artifact
from riskrl.report.build import build_report
from riskrl.report.paired import BASELINE
from riskrl.report.readme import update_readme


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m riskrl.report", description="Markdown Pass@k comparison report"
    )
    p.add_argument("--runs", nargs="+", metavar="DIR", help="run directories or their parents")
    p.add_argument(
        "--base", default=None, metavar="DIR", help="the base model's run directory (no training log)"
    )
    p.add_argument("--out", default=None, metavar="DIR", help="output directory for report.md and figures")
    p.add_argument(
        "--readme",
        nargs="?",
        const="README.md",
        default=None,
        metavar="FILE",
        help="rewrite FILE's results section (default README.md) from the report in --out (default reports)",
    )
    p.add_argument("--title", default="riskrl: Pass@k comparison")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples over problems")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and maj@k subsampling")
    p.add_argument("--k-high", type=int, default=16, help="the large k of the lr plots (largest k if absent)")
    p.add_argument(
        "--baseline", default=BASELINE, help="the variant the paired differences are taken against"
    )
    p.add_argument("--artifact-key", default=ARTIFACT_KEY, help="Prefect artifact key (inside a flow run)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.readme is None and (not args.runs or not args.out):
        parser.error("--runs and --out are required (or --readme to rewrite the README's results)")
    try:
        if args.readme is not None:
            changed = update_readme(args.readme, args.out or "reports")
            print(f"{'updated' if changed else 'unchanged:'} the results section of {args.readme}")
            return 0
        report = build_report(
            args.runs,
            args.base,
            args.out,
            title=args.title,
            n_boot=args.n_boot,
            seed=args.seed,
            k_high=args.k_high,
            baseline=args.baseline,
        )
        publish_prefect_artifact(report, key=args.artifact_key)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {report.path} with {len(report.figures)} figure(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
