"""Running a stage: argv, params.yaml, one-line errors, timing."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
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

    # RuntimeError: a Ray run's failure arrives as "run <dir> failed: <cause>"; OSError: disk full,
    # read-only or forbidden outputs (named by one_line)
    ray_errors: tuple[type[BaseException], ...] = ()
    if "ray" in sys.modules:  # a Ray task's exception whatever its type (one_line shows its own message)
        from ray.exceptions import RayTaskError

        ray_errors = (RayTaskError,)
    return (StageError, ParamsError, ClusterError, DataError, ValidationFailed, ValueError, ConnectionError,
            FileNotFoundError, RuntimeError, OSError, *ray_errors)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ERRNO_WORDS = {errno.ENOSPC: "no space left on device (ENOSPC)", errno.EROFS: "read-only file system (EROFS)",
                errno.EACCES: "permission denied (EACCES)", errno.EPERM: "operation not permitted (EPERM)",
                errno.EDQUOT: "disk quota exceeded (EDQUOT)"}
_NO_SPACE = ("No space left on device", "StorageFull", "os error 28", "enforce fail at inline_container")


def one_line(err: BaseException) -> str:
    """The error as one line: a Ray task's own exception (not Ray's flattened traceback), no ANSI
    colour codes, and disk-full / read-only / permission faults named with their errno."""
    cause = getattr(err, "cause", None)
    if type(err).__name__.startswith("RayTaskError") and isinstance(cause, BaseException):
        return one_line(cause)
    if isinstance(err, OSError) and err.errno in _ERRNO_WORDS:
        where = err.filename or ""
        return f"{_ERRNO_WORDS[err.errno]}" + (f": cannot write {where}" if where else f": {err.strerror}")
    text = _ANSI.sub("", str(err))
    msg = " ".join(text.split()) or type(err).__name__
    if any(s in text for s in _NO_SPACE):
        msg = f"no space left on device (ENOSPC) while writing: {msg[:300]}"
    return msg


def _quiet_libraries() -> None:
    # great-expectations logs hundreds of INFO lines per suite; its failures reach us as ValidationFailed
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.WARNING)


def stage_main(name: str, fn: Callable[[Params, argparse.Namespace], object], add_args: Callable | None = None,
               argv: list[str] | None = None) -> int:
    """Parse ``--params`` (+ the stage's own args), load params, run ``fn``; one line on failure.

    ``--verbose`` (or ``RISKRL_DEBUG=1``) also prints the traceback. Ctrl-C exits 130 with
    ``stage <name>: interrupted`` (outputs are written beside and swapped, so nothing is half-written).
    """
    ap = argparse.ArgumentParser(prog=f"stages/{name}.py")
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    ap.add_argument("--verbose", action="store_true", help="print the traceback of a failure")
    if add_args:
        add_args(ap)
    args = ap.parse_args(argv)
    debug = args.verbose or bool(os.environ.get("RISKRL_DEBUG"))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries()
    t0 = time.perf_counter()
    try:
        params = load_params(args.params)
        fn(params, args)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"stage {name}: interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as err:
        if debug:
            traceback.print_exc()
        print(f"stage {name}: {one_line(err)}", file=sys.stderr)
        return 1
    print(f"stage {name}: done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0
