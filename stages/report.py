"""DVC stage `report`: reports/report.md with Pass@k tables and PNG plots, reports/metrics.json,
reports/plots/*.csv.

    python stages/report.py [--params params.yaml]          reads: report, train.variants
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.report_steps import report

if __name__ == "__main__":
    sys.exit(stage_main("report", lambda p, a: report(p, Paths())))
