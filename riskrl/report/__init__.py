"""The comparison report: Pass@k tables and curves, lr sweeps, lost/gained problems, training curves.

CLI: ``python -m riskrl.report --runs DIR... --base DIR --out DIR``.
"""

from riskrl.report.artifact import publish_prefect_artifact
from riskrl.report.build import Report, build_report
from riskrl.report.runs import Run, discover_runs, load_run, read_training_log
from riskrl.report.tables import lost_gained, passk_summary

__all__ = [
    "Report",
    "Run",
    "build_report",
    "discover_runs",
    "load_run",
    "lost_gained",
    "passk_summary",
    "publish_prefect_artifact",
    "read_training_log",
]
