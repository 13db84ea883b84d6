"""What riskrl's verl plugin adds to ``import verl`` (verl imports it in every process).

    python benchmarks/plugin_import.py [--repeats 5]

Each measurement is a fresh interpreter (``subprocess``), repeats interleaved so that other
load on the machine hits both sides alike. Two figures:

* ``direct``: in a process where verl is already imported with plugins off
  (``VERL_USE_EXTERNAL_PLUGINS=none``), the time of ``import riskrl.verl_plugin``, i.e. what verl
  spends loading the entry point; and the modules it adds;
* ``A/B``: ``import verl`` with the plugin (the default) minus ``import verl`` without it; this
  difference is noisy on a loaded machine (``import verl`` itself takes seconds) and can come
  out negative.

Also listed: whether any pipeline module (pandas, scipy, prefect, dvc, great_expectations,
matplotlib, datasets) or ``verl.trainer.ppo.core_algos`` is loaded after ``import verl``.
Target: the plugin's added import time under 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

FORBIDDEN = ("pandas", "scipy", "prefect", "dvc", "great_expectations", "matplotlib", "datasets")
TARGET_S = 0.2

DIRECT = """
import json, sys, time
import verl
before = set(sys.modules)
t0 = time.perf_counter()
import riskrl.verl_plugin
dt = time.perf_counter() - t0
print(json.dumps({"s": dt, "added": sorted(set(sys.modules) - before)}))
"""

FULL = """
import json, sys, time
t0 = time.perf_counter()
import verl
dt = time.perf_counter() - t0
forbidden = FORBIDDEN_LIST
print(json.dumps({"s": dt, "modules": len(sys.modules),
                  "plugin": "riskrl.verl_plugin" in sys.modules,
                  "core_algos": "verl.trainer.ppo.core_algos" in sys.modules,
                  "forbidden": sorted(m for m in sys.modules if m.split(".")[0] in forbidden)}))
""".replace("FORBIDDEN_LIST", repr(FORBIDDEN))


def run(code: str, plugins: bool) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env["VERL_USE_EXTERNAL_PLUGINS"] = "auto" if plugins else "none"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    direct, with_p, without_p = [], [], []
    last_direct = last_with = None
    for _ in range(args.repeats):
        last_direct = run(DIRECT, plugins=False)
        direct.append(last_direct["s"])
        last_with = run(FULL, plugins=True)
        with_p.append(last_with["s"])
        without = run(FULL, plugins=False)
        without_p.append(without["s"])
    d_med = statistics.median(direct)
    ab = statistics.median(with_p) - statistics.median(without_p)
    print(f"repeats: {args.repeats} fresh interpreters each (median)")
    print(f"import verl without plugins: {statistics.median(without_p):.3f} s, {without['modules']} modules")
    print(f"import verl with riskrl's plugin: {statistics.median(with_p):.3f} s, {last_with['modules']} modules")
    print(f"plugin import, direct: {d_med * 1e3:.1f} ms (min {min(direct) * 1e3:.1f} ms), "
          f"modules added: {last_direct['added']}")
    print(f"plugin import, A/B difference of medians: {ab * 1e3:+.0f} ms (noisy)")
    print(f"after import verl: plugin loaded {last_with['plugin']}, core_algos loaded {last_with['core_algos']}, "
          f"pipeline modules {last_with['forbidden'] or 'none'}")
    ok = d_med < TARGET_S and not last_with["forbidden"] and not last_with["core_algos"]
    print(f"target (< {TARGET_S} s added, no pipeline module, no core_algos): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
