"""Running a stage: argv, params.yaml, one-line errors, timing."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable

from riskrl.config import Params, ParamsError, load_params


class StageError(RuntimeError):
    """A stage cannot go on; the message is one line."""


def _expected_errors() -> tuple[type[BaseException], ...]:
    from riskrl.cluster import ClusterError
    from riskrl.data.sources import DataError
    from riskrl.data.validation import ValidationFailed

    # RuntimeError: a Ray run's failure arrives as "run <dir> failed: <cause>"
    return (StageError, ParamsError, ClusterError, DataError, ValidationFailed, ValueError, ConnectionError,
            FileNotFoundError, RuntimeError)


def stage_main(name: str, fn: Callable[[Params, argparse.Namespace], object], add_args: Callable | None = None,
               argv: list[str] | None = None) -> int:
    """Parse ``--params`` (+ the stage's own args), load params, run ``fn``; one line on failure.

    Set ``RISKRL_DEBUG=1`` for the full traceback.
    """
    ap = argparse.ArgumentParser(prog=f"stages/{name}.py")
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if add_args:
        add_args(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    try:
        params = load_params(args.params)
        fn(params, args)
    except _expected_errors() as err:
        if os.environ.get("RISKRL_DEBUG"):
            traceback.print_exc()
        msg = " ".join(str(err).split()) or type(err).__name__
        print(f"stage {name}: {msg}", file=sys.stderr)
        return 1
    print(f"stage {name}: done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0
