"""DVC stage `bandit`: the RS-GRPO bandit reproduction -> outputs/bandit/{bandit.json,bandit.png}.

    python stages/bandit.py [--params params.yaml]          reads: bandit
"""

import sys

from riskrl.pipeline import Paths, stage_main
from riskrl.pipeline.outputs import staged_output


def run(p, a):
    from riskrl.bandit import main as bandit_main

    with staged_output(Paths().bandit) as out:  # the previous outputs stay until both files are written
        bandit_main(["--betas", ",".join(f"{b:g}" for b in p.bandit.betas), "--seeds", str(p.bandit.seeds),
                     "--updates", str(p.bandit.updates), "--json", str(out / "bandit.json"),
                     "--png", str(out / "bandit.png")])


if __name__ == "__main__":
    sys.exit(stage_main("bandit", run))
