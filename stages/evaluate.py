"""DVC stage `evaluate@<variant>` (or `evaluate_base` with --base): Pass@k on every benchmark.

    python stages/evaluate.py riskpo_track [--params params.yaml]
        -> evals/riskpo_track/<run>/, metrics/evaluate_riskpo_track.json
    python stages/evaluate.py --base                          -> evals/base/

reads: evaluate, data.benchmarks, cluster, backend. Sampling runs as Ray tasks.
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.eval_steps import evaluate, evaluate_base


def args(ap):
    ap.add_argument("variant", nargs="?", help="a name of train.variants (e.g. grpo, rs_grpo_b2)")
    ap.add_argument("--base", action="store_true", help="evaluate the starting policy instead")


def run(p, a):
    if a.base:
        return evaluate_base(p, Paths())
    if not a.variant:
        raise ValueError("give a variant of train.variants or --base")
    return evaluate(p, Paths(), a.variant)


if __name__ == "__main__":
    sys.exit(stage_main("evaluate_base" if "--base" in sys.argv else "evaluate", run, args))
