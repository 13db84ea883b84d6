"""The Prefect flow over the DVC stages, under prefect_test_harness."""

import asyncio

import pytest
import yaml

pytestmark = pytest.mark.slow


def test_flow_runs_stages_through_dvc_and_publishes_report(micro_repo, prefect_harness):
    from prefect.client.orchestration import get_client

    from flows.study import study

    states = study(repo=str(micro_repo), bandit_too=False)
    # after dvc repro, DVC's cache decides: nothing reruns
    assert set(states.values()) == {"skipped"}, states
    # a parameter change reruns only what depends on it
    states = study(repo=str(micro_repo), overrides=["report.k_high=2"], bandit_too=False)
    assert states["report"] == "ran" and states["train@riskpo"] == "skipped" and states["sft"] == "skipped"
    assert yaml.safe_load((micro_repo / "params.yaml").read_text())["report"]["k_high"] == 2

    async def artifact():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    latest = {a.key: a for a in asyncio.run(artifact())}
    assert "riskpo" in latest["riskrl-passk"].data


def test_bad_override_stops_in_one_line_and_keeps_params(micro_repo, prefect_harness):
    from flows.study import study
    from riskrl.config import ParamsError

    before = (micro_repo / "params.yaml").read_text()
    with pytest.raises(ParamsError, match=r"train.riskpo.bundle_size=0: Input should be greater than or equal to 1"):
        study(repo=str(micro_repo), overrides=["train.riskpo.bundle_size=0"], bandit_too=False)
    assert (micro_repo / "params.yaml").read_text() == before


def test_deployment_with_cron_schedule_is_registered(prefect_harness):
    from prefect.client.orchestration import get_client

    from flows.deploy import DEFAULT_CRON, deployment

    dep = deployment(name="nightly-test", overrides=["train.steps=50"])
    dep_id = dep.apply()

    async def read():
        async with get_client() as client:
            return await client.read_deployment(dep_id)

    d = asyncio.run(read())
    assert d.name == "nightly-test"
    assert d.parameters["overrides"] == ["train.steps=50"]
    assert [s.schedule.cron for s in d.schedules] == [DEFAULT_CRON]
