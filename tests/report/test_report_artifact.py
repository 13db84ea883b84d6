"""The Pass@k table as a Prefect Markdown artifact, created in a flow and read back via the client."""

from __future__ import annotations

import pytest

from riskrl.report import publish_prefect_artifact
from riskrl.report.build import Report

TABLE = "### gsm8k\n\n| run | seeds | pass@1 |\n|---|---|---|\n| base | 1 | 0.438 [0.177, 0.698] |\n"


@pytest.mark.slow
def test_artifact_created_inside_a_flow_and_read_back(prefect_harness, tmp_path):
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    report = Report(markdown="# full\n" + TABLE, passk_markdown=TABLE, summary=None, changes=None,
                    path=tmp_path / "report.md")  # fmt: skip

    @task
    def publish_in_task(key: str):
        return publish_prefect_artifact(report, key=key)

    @flow
    def report_flow():
        return publish_prefect_artifact(report, key="riskrl-passk-test"), publish_in_task("riskrl-passk-task")

    in_flow, in_task = report_flow()
    assert in_flow is not None and in_task is not None
    assert publish_prefect_artifact(report, key="riskrl-passk-test") is None  # outside: no-op

    with get_client(sync_client=True) as client:
        for key, artifact_id in (("riskrl-passk-test", in_flow), ("riskrl-passk-task", in_task)):
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            assert [a.id for a in found] == [artifact_id]
            art = found[0]
            assert art.type == "markdown"
            assert TABLE in art.data and str(tmp_path / "report.md") in art.data
            assert art.flow_run_id is not None
