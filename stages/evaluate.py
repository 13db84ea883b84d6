"""DVC stage `evaluate@<estimator>` (or `evaluate_base` with --base): Pass@k on every benchmark.

    python stages/evaluate.py riskpo [--params params.yaml]   -> evals/riskpo/<run>/, evals/riskpo/summary.json
    python stages/evaluate.py --base                          -> evals/base/

reads: evaluate, data.benchmarks, cluster, backend. Sampling runs as Ray tasks.
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.eval_steps import evaluate, evaluate_base


def args(ap):
    ap.add_argument("estimator", nargs="?", help="grpo, rs_grpo or riskpo (one of train.estimators)")
    ap.add_argument("--base", action="store_true", help="evaluate the starting policy instead")


def run(p, a):
    if a.base:
        return evaluate_base(p, Paths())
    if not a.estimator:
        raise ValueError("give an estimator or --base")
    return evaluate(p, Paths(), a.estimator)


if __name__ == "__main__":
    sys.exit(stage_main("evaluate_base" if "--base" in sys.argv else "evaluate", run, args))
