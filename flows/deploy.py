"""Serve the study flow as a Prefect deployment with a cron schedule (shown in the Prefect UI).

    prefect server start                      # UI and API on http://127.0.0.1:4200 (loopback)
    python flows/deploy.py                    # another shell: registers riskrl-study/nightly there and serves it
    python flows/deploy.py --cron '30 2 * * 1-5' --timezone Europe/Paris --set evaluate.max_problems=100

The API is $PREFECT_API_URL, else the active profile's PREFECT_API_URL, else --api-url
(default http://127.0.0.1:4200/api): never a temporary server. Each run of the deployment is one
named DVC experiment (flows/study.py); ``--set`` gives the default overrides of the scheduled runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_API_URL = "http://127.0.0.1:4200/api"
DEFAULT_CRON = "0 3 * * *"  # every night at 03:00
DEFAULT_TIMEZONE = "UTC"


def configured_api_url() -> str | None:
    """$PREFECT_API_URL or the active profile's, without starting anything."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def check_server(url: str, timeout_s: float = 10.0) -> None:
    """One line (SystemExit) when no Prefect API answers at ``url``."""
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/health", timeout=timeout_s).raise_for_status()
    except httpx.HTTPError as err:
        raise SystemExit(f"deploy: no Prefect API at {url} ({type(err).__name__}: {err}); start one with "
                         f"`prefect server start` or set PREFECT_API_URL") from None


def deployment(name: str = "nightly", cron: str = DEFAULT_CRON, overrides: list[str] | None = None,
               repo: str = str(ROOT), timezone: str = DEFAULT_TIMEZONE):
    """The RunnerDeployment of the study flow: cron in ``timezone``, default parameters."""
    from prefect.schedules import Cron

    from flows.study import study

    return study.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters={"overrides": list(overrides or []), "repo": repo},
        description=(f"riskrl study as one named DVC experiment per run (dvc exp show); cron '{cron}' "
                     f"({timezone}); stages download -> prepare -> validate -> sft -> train -> evaluate -> report"),
        tags=["riskrl"],
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="nightly", help="deployment name (default: nightly)")
    ap.add_argument("--cron", default=DEFAULT_CRON, help=f"cron schedule (default: '{DEFAULT_CRON}')")
    ap.add_argument("--timezone", default=DEFAULT_TIMEZONE, help="IANA timezone of the cron (default: UTC)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="default params.yaml override of every scheduled run (repeatable)")
    ap.add_argument("--repo", default=str(ROOT), help="the repository the runs study (default: this one)")
    ap.add_argument("--api-url", default=None, help=f"Prefect API when none is configured (default {DEFAULT_API_URL})")
    args = ap.parse_args(argv)

    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SystemExit(f"deploy: unknown timezone {args.timezone!r} (an IANA name, e.g. UTC, Europe/Paris)") from None
    url = args.api_url or configured_api_url() or DEFAULT_API_URL
    os.environ["PREFECT_API_URL"] = url  # the served runs' engine processes inherit it: no temporary server
    check_server(url)
    os.chdir(ROOT)  # the entrypoint flows/study.py:study is resolved from here by every run
    sys.path.insert(0, str(ROOT))

    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        from flows.study import check_repo, validated_params
        from riskrl.config import ParamsError

        try:
            validated_params(check_repo(args.repo), args.overrides)
        except (ParamsError, RuntimeError) as err:
            raise SystemExit(f"deploy: {err}") from None
        print(f"deploy: serving riskrl-study/{args.name} at {url} (cron '{args.cron}', {args.timezone})", flush=True)
        serve(deployment(args.name, args.cron, args.overrides, args.repo, args.timezone))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
