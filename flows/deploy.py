"""Serve the study flow as a Prefect deployment with a cron schedule (shown in the Prefect UI).

    prefect server start                      # UI and API on http://127.0.0.1:4200 (loopback)
    python flows/deploy.py                    # in another shell: registers + serves the deployment
    prefect deployment ls                     # riskrl-study/nightly, schedule "0 3 * * *"
    prefect deployment run riskrl-study/nightly -p 'overrides=["train.steps=50"]'

Options: --cron, --name, --set key=value (default overrides of every scheduled run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.study import ROOT, study  # noqa: E402

DEFAULT_CRON = "0 3 * * *"  # every night at 03:00


def deployment(name: str = "nightly", cron: str = DEFAULT_CRON, overrides: list[str] | None = None,
               repo: str = str(ROOT)):
    return study.to_deployment(
        name=name, cron=cron, parameters={"repo": repo, "overrides": overrides or [], "bandit_too": True},
        description="riskrl study: DVC stages download -> ... -> report, on a schedule", tags=["riskrl"],
    )


def main() -> None:
    from prefect import serve

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="nightly")
    ap.add_argument("--cron", default=DEFAULT_CRON)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    serve(deployment(args.name, args.cron, args.overrides))


if __name__ == "__main__":
    main()
