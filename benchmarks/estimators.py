"""Advantage-estimator speed through verl's registry, as ratios to verl's ``grpo_vectorized``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/estimators.py [--reps 15] [--threads 2]

Median time per call, estimators interleaved within each repetition (so drift from other load
hits all rows alike), at the published shapes (prompts x rollouts x response tokens) with
verl's real dtypes (float32 token rewards, int64 response mask). ``floor`` is the memory-bound
minimum every outcome estimator pays: ``token_level_rewards.sum(-1)`` then one broadcast
multiply by the mask. ``loop (published structure)`` is a plain-Python per-response
implementation shaped like the published RiskPO fork (tests/estimators/reference.py), timed
at the 1024 x 5 shape only.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP workers distort timings

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from verl.trainer.ppo.core_algos import get_adv_estimator_fn  # noqa: E402

import riskrl.estimators.registry  # noqa: E402,F401  (registers rs_grpo, riskpo, passk, pkpo)
from riskrl.estimators import RISKPO_PRESETS, reset_process_tracker  # noqa: E402

SHAPES = [(512, 10, 3072), (1024, 5, 1024), (1024, 8, 1024)]
TARGETS = ("passk k=4", "pkpo k=4 loo")  # each <= 1.0x verl's grpo_vectorized at every shape


def make_inputs(prompts: int, n: int, length: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    bs = prompts * n
    lengths = torch.randint(length // 8, length + 1, (bs,), generator=g)
    mask = (torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.int64)
    rewards = torch.zeros(bs, length, dtype=torch.float32)
    p = torch.rand(prompts, generator=g).repeat_interleave(n)
    rewards[torch.arange(bs), lengths - 1] = (torch.rand(bs, generator=g) < p).float()
    uid = np.array([str(uuid.UUID(int=int(x))) for x in torch.randint(0, 2**62, (prompts,), generator=g)], dtype=object)
    return rewards, mask, np.repeat(uid, n)


def configs():
    track_mvar = dict(RISKPO_PRESETS["dapo"], use_q_track_mode="track")
    algo = lambda name, riskpo=None: OmegaConf.create(  # noqa: E731
        {"adv_estimator": name, "norm_adv_by_std_in_grpo": True, "rs_grpo": {"beta": 2.0}, "riskpo": riskpo or {},
         "passk": {"k": 4}, "pkpo": {"k": 4, "baseline": "loo"}}
    )
    return {
        "grpo_vectorized (verl)": ("grpo_vectorized", algo("grpo_vectorized")),
        "rs_grpo": ("rs_grpo", algo("rs_grpo")),
        "riskpo track MVaR sum-mean": ("riskpo", algo("riskpo", dict(track_mvar, credit_assign_mode="sum-mean"))),
        "riskpo track MVaR std": ("riskpo", algo("riskpo", dict(track_mvar, credit_assign_mode="std"))),
        "passk k=4": ("passk", algo("passk")),
        "pkpo k=4 loo": ("pkpo", algo("pkpo")),
    }


def floor(token_level_rewards, response_mask, **_):
    s = token_level_rewards.sum(-1)
    return s.unsqueeze(-1) * response_mask


def loop_published(token_level_rewards, response_mask, index, config, tracker_state):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.estimators.reference import ref_riskpo

    scores = token_level_rewards.sum(-1)
    adv = ref_riskpo(scores.tolist(), list(index), dict(config.riskpo), tracker_state)
    return torch.tensor(adv, dtype=torch.float32).unsqueeze(-1) * response_mask


def bench_shape(shape, reps: int, with_loop: bool):
    rewards, mask, uid = make_inputs(*shape)
    rows = {}
    for label, (name, cfg) in configs().items():
        fn = get_adv_estimator_fn(name)
        rows[label] = (lambda fn=fn, cfg=cfg: fn(token_level_rewards=rewards, response_mask=mask, index=uid, config=cfg))
    rows["floor (sum + broadcast)"] = lambda: floor(rewards, mask)
    times = {k: [] for k in rows}
    reset_process_tracker()
    for fn in rows.values():  # warm-up (and initialise the RiskPO tracker, so `track` is exercised)
        fn()
    for _ in range(reps):
        for label, fn in rows.items():
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    if with_loop:
        from tests.estimators.reference import RefTracker

        cfg = configs()["riskpo track MVaR sum-mean"][1]
        lt = []
        for _ in range(3):
            t0 = time.perf_counter()
            loop_published(rewards, mask, uid, cfg, RefTracker(0.1))
            lt.append(time.perf_counter() - t0)
        med["loop (published structure)"] = statistics.median(lt)
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-loop", action="store_true", help="skip the slow loop implementation")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    console = Console()
    console.print(f"torch {torch.__version__}, {args.threads} threads, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
                  f"median of {args.reps} interleaved reps")
    for shape in SHAPES:
        med = bench_shape(shape, args.reps, with_loop=(shape == (1024, 5, 1024) and not args.no_loop))
        ref = med["grpo_vectorized (verl)"]
        table = Table(title=f"{shape[0]} prompts x {shape[1]} rollouts x {shape[2]} tokens")
        table.add_column("estimator")
        table.add_column("ms / call", justify="right")
        table.add_column("x grpo_vectorized", justify="right")
        for label, t in med.items():
            table.add_row(label, f"{t * 1e3:.2f}", f"{t / ref:.2f}")
        console.print(table)
        slow = [f"{label} {t / ref:.2f}x" for label, t in med.items() if label in TARGETS and t > ref]
        console.print(f"target <= 1.0x grpo_vectorized for {', '.join(TARGETS)}: "
                      + ("met" if not slow else "NOT met: " + ", ".join(slow)))


if __name__ == "__main__":
    main()
