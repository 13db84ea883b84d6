"""DVC stage `train@<variant>`: the variant's lr x seed runs -> runs/<variant>/<lr..._s...>/.

    python stages/train.py riskpo_track [--params params.yaml]
        reads: train.variants.<variant>, train.lrs, train.seeds, the shared train keys, cluster, backend (+ verl)

Runs go to Ray as parallel tasks (embedded) or as verl jobs on a GPU cluster (backend: verl).
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.train_steps import train


def args(ap):
    ap.add_argument("variant", help="a name of train.variants (e.g. grpo, rs_grpo_b2, riskpo_track)")


if __name__ == "__main__":
    sys.exit(stage_main("train", lambda p, a: train(p, Paths(), a.variant), args))
