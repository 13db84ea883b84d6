"""The comparison report: Pass@k tables and curves, lr sweeps, paired differences against the
baseline, lost/gained problems, training curves and tracked quantiles.

CLI: ``python -m riskrl.report --runs DIR... --base DIR --out DIR``; after ``dvc repro``,
``python -m riskrl.report --readme`` writes the README's results section from ``reports/``.
"""

from riskrl.report.artifact import publish_prefect_artifact
from riskrl.report.build import Report, build_report
from riskrl.report.paired import paired_differences, paired_markdown
from riskrl.report.readme import results_section, update_readme
from riskrl.report.runs import Run, discover_runs, load_run, read_training_log
from riskrl.report.tables import lost_gained, passk_summary

__all__ = [
    "Report",
    "Run",
    "build_report",
    "discover_runs",
    "load_run",
    "lost_gained",
    "paired_differences",
    "paired_markdown",
    "passk_summary",
    "publish_prefect_artifact",
    "read_training_log",
    "results_section",
    "update_readme",
]
