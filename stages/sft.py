"""DVC stage `sft` (embedded backend): init the tiny model, SFT it on the training set -> models/base.

    python stages/sft.py [--params params.yaml]       reads: model, sft, data.train
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.model_steps import sft

if __name__ == "__main__":
    sys.exit(stage_main("sft", lambda p, a: sft(p, Paths())))
