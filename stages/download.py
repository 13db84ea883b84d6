"""DVC stage `download`: every Hub dataset of params.yaml's `data` section -> data/raw/<source>/.

    python stages/download.py [--params params.yaml]       reads: data.train, data.benchmarks, data.hf_cache

Synthetic and local sources need no download. Offline, it stops with one line naming the
dataset and how to give a local copy (`local: [path]` in its data entry). For a single source
by hand: `python -m riskrl.data download --source math500 --out data/raw`.
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.data_steps import download

if __name__ == "__main__":
    sys.exit(stage_main("download", lambda p, a: download(p, Paths())))
