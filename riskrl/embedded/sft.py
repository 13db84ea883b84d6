"""SFT warm start: teach the random model the answer format, and stop while it is still unsure.

The base policy must be *imperfect and diverse*: RL can only sharpen what the base sometimes
samples, and Pass@k for k > 1 only tells estimators apart when Pass@16 >> Pass@1. The tiny
model learns the task in a sharp transition (on the default task, held-out Pass@1 went from
0.12 to 0.54 between 300 and 500 steps, and where it happens moves with the data and the
seed), so a fixed step count cannot promise a given base. SFT therefore stops as
soon as the sampled accuracy on ``eval_rows`` problems held out from its data reaches
``target_acc`` (checked every ``eval_every`` steps), with ``steps`` as the budget.
Loss: next-token cross-entropy on the answer and EOS only (the prompt is masked).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from riskrl.embedded.configs import SFTConfig, to_dict  # noqa: F401  (SFTConfig re-exported)
from riskrl.embedded.data import Example, decode_responses, encode_prompts, load_examples
from riskrl.embedded.model import load_pretrained, save_pretrained
from riskrl.embedded.rollout import generate
from riskrl.embedded.runtime import resolve_device, set_threads


def encode_sft(examples: list[Example], tokenizer: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, L) ids ``<bos> prompt answer <eos>`` right padded, and (N, L) labels (-100 off the answer)."""
    rows, labels = [], []
    for ex in examples:
        p = tokenizer(ex.prompt)["input_ids"]
        a = tokenizer(ex.ground_truth, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(p + a)
        labels.append([-100] * len(p) + a)
    L = max(map(len, rows))
    ids = torch.full((len(rows), L), tokenizer.pad_token_id, dtype=torch.long)
    lab = torch.full((len(rows), L), -100, dtype=torch.long)
    for i, (r, y) in enumerate(zip(rows, labels, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        lab[i, : len(y)] = torch.tensor(y)
    return ids, lab


def lr_at(step: int, cfg: SFTConfig) -> float:
    """Linear warmup then cosine decay from lr to lr * min_lr_frac (step counts from 0)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def held_out_accuracy(model: Any, tokenizer: Any, examples: list[Example], samples: int, seed: int) -> float:
    """Mean reward of ``samples`` responses per example at temperature 1 (seeded)."""
    from riskrl.rewards import compute_score

    flat = [ex for ex in examples for _ in range(samples)]
    device = next(model.parameters()).device
    ids, mask = encode_prompts(tokenizer, [ex.prompt for ex in flat], device)
    longest = max(len(tokenizer(ex.ground_truth, add_special_tokens=False)["input_ids"]) for ex in examples)
    ro = generate(
        model,
        ids,
        mask,
        max_new_tokens=longest + 1,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
        generator=torch.Generator(device=device).manual_seed(seed),
    )
    texts = decode_responses(tokenizer, ro.response_ids, ro.response_mask)
    scores = [
        compute_score(ex.data_source, t, ex.ground_truth, ex.extra_info)["score"]
        for ex, t in zip(flat, texts, strict=True)
    ]
    return float(sum(scores) / len(scores))


def run_sft(cfg: SFTConfig) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data`` and save the base policy to ``cfg.out``. Returns a summary."""
    if not (cfg.model and cfg.data and cfg.out):
        raise ValueError("sft needs model, data and out paths")
    set_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    model, tokenizer = load_pretrained(cfg.model, device)
    examples = load_examples(cfg.data, tokenizer)
    held_out: list[Example] = []
    if cfg.target_acc > 0:
        if len(examples) <= 2 * cfg.eval_rows:
            raise ValueError(
                f"sft data has {len(examples)} rows; target_acc needs more than 2 * eval_rows ({cfg.eval_rows})"
            )
        held_out, examples = examples[: cfg.eval_rows], examples[cfg.eval_rows :]
    if cfg.max_examples:
        examples = examples[: cfg.max_examples]
    ids, labels = encode_sft(examples, tokenizer)
    ids, labels = ids.to(device), labels.to(device)
    attn = (ids != tokenizer.pad_token_id).long()
    attn[:, 0] = 1  # <bos> may share the pad id in other tokenizers; keep it visible

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    t0 = time.perf_counter()
    log: list[dict[str, Any]] = []
    acc = None
    bar = tqdm(range(cfg.steps), desc="sft", disable=not cfg.progress, dynamic_ncols=True)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        pick = torch.randint(len(ids), (cfg.batch_size,), generator=gen).to(device)
        x, y, m = ids[pick], labels[pick], attn[pick]
        padded = not bool(m.all())
        logits = model(input_ids=x, attention_mask=m if padded else None, use_cache=False).logits  # (B, L, V)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), y[:, 1:].flatten(), ignore_index=-100
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        row: dict[str, Any] = {"step": step + 1, "loss": loss.item(), "lr": lr_at(step, cfg)}
        if held_out and (step + 1) % cfg.eval_every == 0:
            acc = held_out_accuracy(model, tokenizer, held_out, cfg.eval_samples, seed=cfg.seed + step)
            row["held_out_acc"] = acc
            model.train()
        log.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc="-" if acc is None else f"{acc:.2f}")
        if acc is not None and acc >= cfg.target_acc:
            break
    seconds = time.perf_counter() - t0
    model.eval()
    tail = [r["loss"] for r in log[-10:]]
    summary = {
        "stage": "sft",
        "sft_config": to_dict(cfg),
        "examples": len(examples),
        "steps_run": len(log),
        "stopped_early": len(log) < cfg.steps,
        "held_out_acc": acc,
        "final_loss": sum(tail) / len(tail),
        "seconds": seconds,
        "num_threads": torch.get_num_threads(),
        "device": str(device),
    }
    # riskrl_meta.json is hashed by DVC: nothing wall-clock in it (seconds stay in the returned summary)
    save_pretrained(model.cpu(), tokenizer, cfg.out, **{k: v for k, v in summary.items() if k != "seconds"})
    from riskrl.embedded.metrics import rows_to_csv
    from riskrl.io import write_text

    write_text(Path(cfg.out) / "sft_log.csv", rows_to_csv(log))
    return summary
