#!/usr/bin/env bash
# Maintainer check of the Prefect UI (not CI): a Prefect server on loopback, the deployment served,
# one micro run triggered and awaited, headless-Chromium screenshots saved to docs/:
#   docs/prefect-deployment.png  the deployment page (schedule with its timezone, typed parameters)
#   docs/prefect-run.png         the finished run's logs (one task per DVC stage)
#   docs/prefect-artifact.png    the run's Markdown artifact (experiment, overrides, Pass@k, change)
# Needs Debian's chromium (apt-get install -y chromium). The run is a DVC experiment of this
# repository's HEAD (`dvc exp show` lists it afterwards); the workspace is not touched.
#   bash scripts/prefect_ui_check.sh            # PORT=4210 by default, PYTHON=.venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-4210}
PYTHON=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PYTHON")
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "prefect_ui_check: no chromium (apt-get install -y chromium)"; exit 1; }
export PREFECT_HOME=${PREFECT_HOME:-$(mktemp -d)}   # a throwaway database
export PREFECT_API_URL="http://127.0.0.1:$PORT/api" PREFECT_SERVER_ANALYTICS_ENABLED=false
export RAY_USAGE_STATS_ENABLED=0 DVC_NO_ANALYTICS=1 PATH="$BIN:$PATH"
LOG=${LOG:-$(mktemp -d)}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

setsid "$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" >"$LOG/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 180); do curl -sf "$PREFECT_API_URL/health" >/dev/null && break; sleep 1; done
curl -sf "$PREFECT_API_URL/health" >/dev/null || { echo "server did not start: $LOG/server.log"; exit 1; }

# a micro study: few RL steps, a small evaluation (the artifact notes evaluate.max_problems)
MICRO=(--set model.hidden_size=32 --set model.num_layers=1 --set model.num_heads=2 --set model.num_kv_heads=2
       --set model.intermediate_size=64 --set sft.steps=4 --set sft.batch_size=16 --set sft.target_acc=0
       --set 'train.lrs=[1e-3]' --set 'train.seeds=[0]' --set train.steps=3 --set train.prompts_per_step=10
       --set train.n=3 --set evaluate.n=4 --set evaluate.max_problems=24 --set evaluate.n_boot=100
       --set report.k_high=4 --set report.n_boot=100 --set bandit.updates=300 --set bandit.seeds=2)
setsid "$PYTHON" flows/deploy.py --name ui-check --cron "0 3 * * *" --timezone UTC "${MICRO[@]}" >"$LOG/serve.log" 2>&1 &
pids+=($!)

"$PYTHON" - "$LOG" <<'EOF'
import asyncio, json, sys, time
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as c:
        for _ in range(300):
            try:
                dep = await c.read_deployment_by_name("riskrl-study/ui-check")
                break
            except Exception:
                time.sleep(1)
        else:
            sys.exit("deployment riskrl-study/ui-check never registered; see serve.log")
        run = await c.create_flow_run_from_deployment(dep.id)
        t0 = time.time()
        while True:
            fr = await c.read_flow_run(run.id)
            if fr.state and fr.state.is_final():
                break
            await asyncio.sleep(5)
        arts = await c.read_artifacts()
        art = next((a for a in arts if a.flow_run_id == run.id and a.type == "markdown"), None)
        info = {"deployment": str(dep.id), "flow_run": str(run.id), "name": fr.name, "state": fr.state.type.value,
                "seconds": round(time.time() - t0, 1), "artifact": str(art.id) if art else None}
        print(json.dumps(info))
        open(sys.argv[1] + "/run.json", "w").write(json.dumps(info))

asyncio.run(main())
EOF
read -r DEP RUN ART STATE < <("$PYTHON" -c "import json,sys; d=json.load(open('$LOG/run.json')); print(d['deployment'], d['flow_run'], d['artifact'], d['state'])")
UI="http://127.0.0.1:$PORT"
shot() {  # url, file, height
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="1400,$3" \
    --virtual-time-budget=20000 --run-all-compositor-stages-before-draw --screenshot="$2" "$1" >/dev/null 2>&1
}
shot "$UI/deployments/deployment/$DEP" docs/prefect-deployment.png 1000
shot "$UI/runs/flow-run/$RUN" docs/prefect-run.png 1100
[ "$ART" != None ] && shot "$UI/artifacts/artifact/$ART" docs/prefect-artifact.png 1300
echo "prefect_ui_check: run $STATE; screenshots in docs/ (logs: $LOG)"
"$BIN/dvc" exp show --no-pager --only-changed --md | head -5 || true
[ "$STATE" = COMPLETED ]
