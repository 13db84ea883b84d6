"""DVC stage `validate`: great-expectations suites over data/prepared -> data/validation/.

    python stages/validate.py [--params params.yaml]       reads: data.max_prompt_length

A failing suite stops the DAG with one line per failed expectation; the validation result and
the Data Docs (data/validation/data_docs/index.html) are kept for inspection.
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.data_steps import validate

if __name__ == "__main__":
    sys.exit(stage_main("validate", lambda p, a: validate(p, Paths())))
