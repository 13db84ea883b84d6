"""DVC stage `train@<estimator>`: the estimator's lr x seed runs -> runs/<estimator>/<lr..._s...>/.

    python stages/train.py riskpo [--params params.yaml]     reads: train, cluster, backend (+ verl)

Runs go to Ray as parallel tasks (embedded) or as verl jobs on a GPU cluster (backend: verl).
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.train_steps import train


def args(ap):
    ap.add_argument("estimator", help="grpo, rs_grpo or riskpo (one of train.estimators)")


if __name__ == "__main__":
    sys.exit(stage_main("train", lambda p, a: train(p, Paths(), a.estimator), args))
