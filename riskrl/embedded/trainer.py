"""On-policy CPU RL trainer of the embedded backend. Docs: docs/embedded.md; math: docs/estimators.md.

GRPO, RS-GRPO and RiskPO come from verl's estimator registry. One step:

1. take ``prompts_per_step`` prompts (a seeded permutation per epoch), repeat each ``n`` times
   (prompt-major, as verl's ``repeat(interleave=True)``), one uuid per prompt;
2. sample responses with a KV cache at ``temperature`` (``rollout.generate``);
3. score them with ``riskrl.rewards.compute_score`` and put each score on the response's last
   token (verl's ``token_level_rewards``);
4. advantages from verl's registry by name, called as verl's ``compute_advantage`` calls them,
   with the same ``algorithm.*`` keys (``algorithm_config``);
5. PPO-clip loss (verl's ``vanilla`` policy loss), optional KL to the base and entropy bonus,
   AdamW step with gradient clipping.

Randomness is a pure function of (seed, step), and checkpoints hold model, optimizer, the
RiskPO tracker, RNG states and the metric rows: a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from riskrl.embedded import algorithm as alg
from riskrl.embedded.checkpoint import (
    clean_partial,
    config_hash,
    load_newest,
    prune_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from riskrl.embedded.configs import TrainConfig, to_dict  # noqa: F401  (TrainConfig re-exported)
from riskrl.embedded.data import Example, decode_responses, encode_prompts, load_examples
from riskrl.embedded.metrics import MetricsLog
from riskrl.embedded.model import load_pretrained, num_params, save_pretrained
from riskrl.embedded.rollout import Rollout, generate, response_logprobs
from riskrl.embedded.runtime import resolve_device, set_threads
from riskrl.io import write_json

# fields that must match between a checkpoint and the run resuming from it
RESUME_KEYS = (
    "estimator",
    "lr",
    "seed",
    "prompts_per_step",
    "n",
    "temperature",
    "top_p",
    "estimator_options",
    "model",
    "data",
)


def step_prompts(num_examples: int, per_step: int, seed: int, step: int) -> np.ndarray:
    """Indices of the prompts of ``step`` (1-based): consecutive slices of one seeded permutation
    per epoch, so the data order is a pure function of (seed, step)."""
    pos = np.arange((step - 1) * per_step, step * per_step)
    epochs, k = np.divmod(pos, num_examples)
    perms = {
        int(e): np.random.default_rng([seed, int(e)]).permutation(num_examples) for e in np.unique(epochs)
    }
    return np.array([perms[int(e)][i] for e, i in zip(epochs, k, strict=True)])


def step_uids(seed: int, step: int, count: int) -> list[str]:
    """One uuid4-like string per prompt, a pure function of (seed, step)."""
    raw = np.random.default_rng([seed, step, 0x75]).bytes(16 * count)
    return [str(uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4)) for i in range(count)]


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) one RL run; returns the ``run.json`` summary."""
    if not (cfg.model and cfg.data and cfg.out):
        raise ValueError("train needs model, data and out paths")
    set_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    out = Path(cfg.out)
    algo_cfg = alg.algorithm_config(cfg)  # validates the estimator name early
    riskpo_mode = algo_cfg.riskpo.use_q_track_mode if cfg.estimator == "riskpo" else None
    score_fn, score_name = alg.scorer()
    ckpt_root = out / "checkpoints"
    run_hash = config_hash(to_dict(cfg))  # of the config as given (before max_new_tokens is filled in)

    # --- state: fresh or from the newest intact checkpoint (never unpickled: see checkpoint.py) ---
    clean_partial(ckpt_root)  # temp folders of a save that was killed
    resumed = load_newest(ckpt_root, device, max_step=cfg.steps) if cfg.resume else None
    if resumed is not None:
        from transformers import AutoTokenizer

        # the start model's tokenizer: its saved name_or_path is then the same as in an uninterrupted run
        model, tokenizer = resumed.model, AutoTokenizer.from_pretrained(cfg.model)
    else:
        model, tokenizer = load_pretrained(Path(cfg.model), device)
    # what is saved with every checkpoint and the final model: the start model's tokenizer as
    # loaded, never the one encoding prompts (calls can leave padding state on it), so a run that
    # resumes to a no-op writes the same bytes as one that trained
    from transformers import AutoTokenizer

    saved_tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay
    )
    tracker = alg.reset_tracker()  # Ray reuses worker processes: never inherit a tracker
    state: dict[str, Any] = {"step": 0, "metrics": [], "timing": []}
    if resumed is not None:
        resume_from, state = resumed.path, resumed.state
        old = state["config"]
        for k in RESUME_KEYS:
            if old.get(k) != getattr(cfg, k):
                raise ValueError(
                    f"cannot resume {resume_from}: it was written with {k}={old.get(k)!r}, this run has {getattr(cfg, k)!r}"
                )
        optimizer.load_state_dict(resumed.optimizer)
        if state.get("tracker") is not None:
            tracker.load_state_dict(state["tracker"])
        set_rng_state(*state["rng"])
    ref_model = None
    if cfg.kl_coef > 0:
        ref_model, _ = load_pretrained(cfg.model, device)
        ref_model.requires_grad_(False)

    examples = load_examples(cfg.data, tokenizer)
    if resumed is None and ckpt_root.exists():  # only once the inputs have been read
        import shutil

        shutil.rmtree(ckpt_root)  # a fresh run replaces an old one's checkpoints
    if not cfg.max_new_tokens:  # the fixed-width answer + EOS: generation never runs longer than needed
        answers = sorted({ex.ground_truth for ex in examples})  # one batched call, not one per row
        longest = max(len(ids) for ids in tokenizer(answers, add_special_tokens=False)["input_ids"])
        cfg = dataclasses.replace(cfg, max_new_tokens=longest + 1)
    log = MetricsLog(out, state["metrics"], state["timing"], tensorboard=cfg.tensorboard)
    start = int(state["step"])
    run_info = {
        "estimator": cfg.estimator,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "mode": riskpo_mode,
        "steps": cfg.steps,
        "algorithm": alg.to_plain(algo_cfg),
        "reward_fn": score_name,
        "num_params": num_params(model),
        "num_threads": torch.get_num_threads(),
        "device": str(device),
        "config": {k: v for k, v in to_dict(cfg).items() if k != "resume"},  # same for a resumed run
    }
    gen = torch.Generator(device=device)
    t_run = time.perf_counter()
    bar = tqdm(
        range(start + 1, cfg.steps + 1),
        desc=f"rl {cfg.estimator}",
        initial=start,
        total=cfg.steps,
        disable=not cfg.progress,
        dynamic_ncols=True,
    )
    for step in bar:
        row, timing = rl_step(
            cfg, step, model, tokenizer, optimizer, ref_model, examples, algo_cfg, score_fn, gen
        )
        if cfg.estimator == "riskpo":
            row.update(tracker.metrics())  # riskpo/mode: the mode actually used (0 batch, 1 track, 2 mix)
            row["riskpo_mode"] = riskpo_mode  # the configured mode
        log.log(row, timing)
        bar.set_postfix(
            reward=f"{row['reward_mean']:.3f}", ent=f"{row['entropy']:.2f}", s=f"{timing['time_step']:.2f}"
        )
        # every save_every steps, and at the last step (so a finished run can be extended)
        if cfg.save_every and (step % cfg.save_every == 0 or step == cfg.steps):
            ckpt_state = {
                "metrics": log.rows,
                "timing": log.timing,
                "config": to_dict(cfg),
                "tracker": tracker.state_dict(),
                "config_hash": run_hash,
            }
            save_checkpoint(ckpt_root, step, model, saved_tokenizer, optimizer, ckpt_state)
            prune_checkpoints(ckpt_root, cfg.keep_checkpoints)
    log.close()
    save_pretrained(
        model.cpu(), saved_tokenizer, out / "model", stage="train", estimator=cfg.estimator, step=cfg.steps
    )
    times = [t["time_step"] for t in log.timing]
    run_info["final"] = log.rows[-1] if log.rows else {}
    timing = {
        "resumed_from_step": start,
        "seconds": time.perf_counter() - t_run,
        "mean_step_seconds": float(np.mean(times)) if times else None,
    }
    # run.json is a pure function of the run (DVC hashes it); wall-clock figures go beside it
    write_json(out / "run.json", run_info)
    write_json(out / "run_timing.json", timing)
    return json.loads(json.dumps({**run_info, **timing}, default=str))


def rl_step(
    cfg: TrainConfig,
    step: int,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    ref_model: Any,
    examples: list[Example],
    algo_cfg: Any,
    score_fn: Any,
    gen: torch.Generator,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One on-policy step; returns (metrics row, timing row)."""
    device = next(model.parameters()).device
    t0 = time.perf_counter()
    batch = [examples[i] for i in step_prompts(len(examples), cfg.prompts_per_step, cfg.seed, step)]
    uids = step_uids(cfg.seed, step, len(batch))
    flat = [ex for ex in batch for _ in range(cfg.n)]  # prompt-major
    index = np.array([u for u in uids for _ in range(cfg.n)], dtype=object)
    ids, mask = encode_prompts(tokenizer, [ex.prompt for ex in flat], device)
    gen.manual_seed(int(np.random.default_rng([cfg.seed, step, 0x5A]).integers(2**62)))
    ro = generate(
        model,
        ids,
        mask,
        max_new_tokens=cfg.max_new_tokens,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        generator=gen,
    )
    t1 = time.perf_counter()

    texts = decode_responses(tokenizer, ro.response_ids, ro.response_mask)
    scores = torch.tensor(
        [
            float(score_fn(ex.data_source, t, ex.ground_truth, ex.extra_info)["score"])
            for ex, t in zip(flat, texts, strict=True)
        ],
        dtype=torch.float32,
        device=device,
    )  # (B,)
    M = ro.response_mask  # (B, T)
    lengths = M.sum(-1).long()
    R = torch.zeros_like(M).scatter_(1, (lengths - 1)[:, None], scores[:, None])  # score on the last token
    adv, _ = alg.compute_advantages(cfg.estimator, R, M, index, algo_cfg)  # (B, T)
    adv = adv.to(device=device, dtype=torch.float32)
    t2 = time.perf_counter()

    metrics = update_policy(cfg, model, optimizer, ref_model, ro, adv)
    t3 = time.perf_counter()

    B = len(flat)
    per_resp_adv = (adv * M).sum(-1) / M.sum(-1)  # (B,)
    per_prompt = scores.view(len(batch), cfg.n)
    row = {
        "step": step,
        "reward_mean": float(scores.mean()),
        "reward_std": float(scores.std()) if B > 1 else 0.0,
        "prompt_any_correct": float((per_prompt > 0).any(-1).float().mean()),
        "prompt_all_correct": float((per_prompt > 0).all(-1).float().mean()),
        "entropy": metrics.pop("entropy"),
        "response_length": float(lengths.float().mean()),
        "adv_mean": float(per_resp_adv.mean()),
        "adv_std": float(per_resp_adv.std()) if B > 1 else 0.0,
        "adv_pos_frac": float((per_resp_adv > 0).float().mean()),
        "adv_neg_frac": float((per_resp_adv < 0).float().mean()),
        "adv_abs_max": float(per_resp_adv.abs().max()),
        **metrics,
        "lr": cfg.lr,
    }
    sampled = int(lengths.sum())
    timing = {
        "step": step,
        "time_sample": t1 - t0,
        "time_reward_adv": t2 - t1,
        "time_update": t3 - t2,
        "time_step": t3 - t0,
        "sampled_tokens_per_s": sampled / max(t1 - t0, 1e-9),
        "trained_tokens_per_s": sampled * cfg.ppo_epochs / max(t3 - t2, 1e-9),
    }
    return row, timing


def update_policy(
    cfg: TrainConfig,
    model: Any,
    optimizer: torch.optim.Optimizer,
    ref_model: Any,
    ro: Rollout,
    adv: torch.Tensor,
) -> dict[str, float]:
    """PPO-clip update(s) on one rollout; returns averaged loss metrics and the sampling entropy."""
    B = ro.response_ids.shape[0]
    single = cfg.ppo_epochs == 1 and cfg.ppo_mini_batches == 1
    old_logp = ref_logp = None
    with torch.no_grad():
        if not single:  # several updates: freeze the sampling policy's log-probs first
            old_logp, _ = response_logprobs(model, ro, cfg.temperature)
        if ref_model is not None:
            ref_logp, _ = response_logprobs(ref_model, ro, cfg.temperature)
    policy_loss = alg.policy_loss_fn()
    actor_cfg = alg.actor_config(cfg)
    model.train()
    acc: dict[str, list[float]] = {}
    ent_sum, tok_sum = 0.0, 0.0  # entropy of the sampling policy: the first epoch's forwards
    mb = B // cfg.ppo_mini_batches
    for epoch in range(cfg.ppo_epochs):
        for s in range(0, B, mb):
            sl = slice(s, s + mb)
            part = Rollout(ro.prompt_ids[sl], ro.prompt_mask[sl], ro.response_ids[sl], ro.response_mask[sl])
            M = part.response_mask
            logp, ent = response_logprobs(model, part, cfg.temperature, with_entropy=True)
            old = logp.detach() if single else old_logp[sl]
            pg_loss, pg_metrics = policy_loss(
                old, logp, adv[sl], M, loss_agg_mode=cfg.loss_agg_mode, config=actor_cfg
            )
            loss = pg_loss
            stats = {
                "pg_loss": float(pg_loss.detach()),
                "pg_clipfrac": pg_metrics["actor/pg_clipfrac"],
                "ppo_kl": pg_metrics["actor/ppo_kl"],
            }
            if ref_model is not None:
                kl = alg.kl_loss(logp, ref_logp[sl], M, cfg.kl_type, cfg.loss_agg_mode)
                loss = loss + cfg.kl_coef * kl
                stats["kl_ref"] = float(kl.detach())
            if cfg.entropy_coeff:
                loss = loss - cfg.entropy_coeff * alg.agg(ent, M, cfg.loss_agg_mode)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
            optimizer.step()
            if epoch == 0:
                ent_sum += float((ent.detach() * M).sum())
                tok_sum += float(M.sum())
            for k, v in stats.items():
                acc.setdefault(k, []).append(v)
    model.eval()
    return {"entropy": ent_sum / max(tok_sum, 1.0), **{k: float(np.mean(v)) for k, v in acc.items()}}
