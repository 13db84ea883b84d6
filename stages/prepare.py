"""DVC stage `prepare`: every dataset of params.yaml -> data/prepared/<name>.parquet (verl schema).

    python stages/prepare.py [--params params.yaml]        reads: data.train, data.benchmarks, task

For a single source by hand: `python -m riskrl.data prepare --source math500 --out data/prepared`.
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.data_steps import prepare

if __name__ == "__main__":
    sys.exit(stage_main("prepare", lambda p, a: prepare(p, Paths())))
