"""Entry point of group ``verl.plugins``: verl imports this in every process that imports verl.

verl swallows plugin import errors at DEBUG level (``verl/__init__.py``), which would leave a
user with only "Unknown advantage estimator" much later. So a failure here is reported loudly
on stderr (and logged at ERROR) before verl hides it, with the cause.
"""

from __future__ import annotations

import logging
import sys
import traceback

try:
    import riskrl.estimators.registry  # noqa: F401  (registers rs_grpo and riskpo)
except Exception as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        f"riskrl verl plugin failed to load, so 'rs_grpo'/'riskpo' are NOT registered: "
        f"{type(exc).__name__}: {exc}"
    )
    logging.getLogger("riskrl").error(msg)
    print(f"ERROR: {msg}", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)
    raise
