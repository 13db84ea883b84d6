"""Worker process of ``riskrl.rewards.pool``: one JSON request per stdin line, one reply per stdout line.

Request ``{"gold": str, "pred": str, "timeout_s": float}``; reply ``{"acc": bool, "timeout": bool}``.
Runs in its own main thread, so the SIGALRM deadline works. Exits when stdin closes.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from riskrl.rewards.math_answer import ScoreTimeout, deadline, verify_in_process, warm_up

    warm_up()  # before "ready": the parent's start timeout covers the slow first import
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        req = json.loads(line)
        reply = {"acc": False, "timeout": False}
        try:
            with deadline(float(req["timeout_s"])):
                reply["acc"] = bool(verify_in_process(req["gold"], req["pred"]))
        except ScoreTimeout:
            reply["timeout"] = True
        except Exception:  # a comparison that raises is a wrong answer, not a dead worker
            pass
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
