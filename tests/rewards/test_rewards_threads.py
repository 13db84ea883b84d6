"""compute_score from threads (verl's reward loop runs it through run_in_executor) and its worker pool."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

from riskrl.rewards import compute_score
from riskrl.rewards.pool import WorkerPool

# (data_source, response, ground truth) whose scores need math-verify, not just string work
CALLS = [
    ("HuggingFaceH4/MATH-500", "\\boxed{0.5}", "\\frac{1}{2}", 1.0),
    ("HuggingFaceH4/MATH-500", "\\boxed{0.33}", "\\frac{1}{3}", 0.0),
    ("HuggingFaceH4/MATH-500", "\\boxed{(-\\infty,3]}", "(-\\infty, 3]", 1.0),
    ("HuggingFaceH4/MATH-500", "\\boxed{(3,\\infty)}", "(-\\infty, 3]", 0.0),
    ("HuggingFaceH4/MATH-500", "\\boxed{10 \\text{ cm}}", "10", 1.0),
    ("HuggingFaceH4/MATH-500", "\\boxed{-q+p}", "p - q", 1.0),
    ("openai/gsm8k", "#### 1,500", "1500", 1.0),
    ("riskrl/multiply", "05535<eos>", "05535", 1.0),
    ("riskrl/multiply", "5535", "05535", 0.0),
    ("HuggingFaceH4/aime_2024", "\\boxed{2040}", "204", 0.0),
]


def test_compute_score_from_a_thread_pool_matches_the_main_thread():
    main = [compute_score(ds, resp, gt) for ds, resp, gt, _ in CALLS]
    assert [m["score"] for m in main] == [c[3] for c in CALLS]
    with ThreadPoolExecutor(max_workers=4) as ex:
        threaded = list(ex.map(lambda c: compute_score(c[0], c[1], c[2]), CALLS * 3))
    assert threaded == main * 3


def test_pool_kills_a_worker_that_overruns():
    # a stand-in worker that starts, then never answers
    hang = [sys.executable, "-c", "import sys,time; print('ready', flush=True); time.sleep(60)"]
    pool = WorkerPool(max_workers=1, command=hang, grace_s=0.2)
    t = time.monotonic()
    assert pool.verify("1", "1", timeout_s=0.3) is False
    assert time.monotonic() - t < 5.0
    assert pool._idle == []  # the hung worker was killed, not reused
    pool.close()
