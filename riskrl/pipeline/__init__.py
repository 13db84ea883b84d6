"""The study's stages as library functions; ``stages/*.py`` are thin DVC entry points over them.

Layout of one ``dvc repro`` (paths relative to the repository root)::

    data/raw/              download   Hub sources saved locally (+ MANIFEST.json)
    data/prepared/         prepare    verl-schema parquet per dataset
    data/validation/       validate   great-expectations results and Data Docs
    models/base/           sft        embedded base policy (init + SFT)
    runs/<variant>/<run>   train      one RL run per (lr, seed) of a train.variants entry: model, checkpoints, logs
    evals/<variant>/<run>  evaluate   samples, Pass@k metrics (+ metrics/evaluate_<variant>.json)
    evals/base/            evaluate_base   the starting policy (+ metrics/evaluate_base.json)
    reports/               report     report.md and its PNG plots (+ metrics/study.json, plots/*.csv)
    outputs/bandit/        bandit     the RS-GRPO bandit reproduction
"""

from riskrl.pipeline.paths import Paths
from riskrl.pipeline.stage import StageError, stage_main

__all__ = ["Paths", "StageError", "stage_main"]
