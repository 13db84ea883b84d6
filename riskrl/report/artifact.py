"""Publish the report's Pass@k table as a Prefect Markdown artifact when running inside a flow."""

from __future__ import annotations

import re
import sys
from uuid import UUID

from riskrl.report.build import Report

ARTIFACT_KEY = "riskrl-passk"


def in_prefect_run() -> bool:
    """True inside a Prefect flow or task run (never when Prefect has not even been imported)."""
    if "prefect" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_prefect_artifact(report: Report | str, *, key: str = ARTIFACT_KEY) -> UUID | None:
    """Create a keyed Markdown artifact with the Pass@k table; a no-op (None) outside a flow run.

    The key keeps version history in the Prefect UI; it may hold lowercase letters, digits, dashes.
    """
    if not re.fullmatch(r"[a-z0-9-]+", key):
        raise ValueError(
            f"Prefect artifact key must hold only lowercase letters, digits and dashes; got '{key}'"
        )
    if not in_prefect_run():
        return None
    from prefect.artifacts import create_markdown_artifact

    table = report if isinstance(report, str) else report.passk_markdown
    where = "" if isinstance(report, str) or report.path is None else f"\n\nFull report: `{report.path}`\n"
    return create_markdown_artifact(
        markdown="# Pass@k\n\n" + table + where, key=key, description="riskrl Pass@k table (mean over seeds)"
    )
