"""``EmbeddedSampler``: the evaluation ``Sampler`` interface over a saved embedded policy.

``sample(prompts, n, temperature, top_p, max_tokens, seed)`` returns, for each prompt, ``n``
``(response_text, num_tokens)`` pairs, sampled in batches with the same KV-cache loop
(``rollout.generate``) and the same prompt rendering as training. ``num_tokens`` counts the
generated tokens including EOS; the text stops before EOS. ``max_tokens`` is capped at the
model's context (``max_position_embeddings`` minus the prompt), so evaluation's generic
default of 1024 cannot run a 64-position model off its end.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from riskrl.embedded.data import decode_responses, encode_prompts
from riskrl.embedded.model import load_pretrained
from riskrl.embedded.rollout import generate
from riskrl.embedded.runtime import resolve_device
from riskrl.evaluation.sampling import render_prompt  # the one rendering shared with evaluation


class EmbeddedSampler:
    """Sample from an embedded model directory; ``device=None`` picks CUDA when present."""

    def __init__(
        self,
        model_dir: str | os.PathLike,
        device: str | None = None,
        batch_size: int = 1024,
        progress: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.model, self.tokenizer = load_pretrained(model_dir, self.device)
        self.batch_size = batch_size
        self.progress = progress

    def render(self, prompt: str | Sequence[dict[str, Any]]) -> str:
        return render_prompt(prompt, self.tokenizer)

    def sample(
        self,
        prompts: list,
        n: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 6,
        seed: int = 0,
    ) -> list[list[tuple[str, int]]]:
        """``n`` samples for each prompt (a string or a chat message list), in prompt order."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        texts = [self.render(p) for p in prompts]
        flat = [t for t in texts for _ in range(n)]  # prompt-major, as in training
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        out: list[tuple[str, int]] = []
        starts = range(0, len(flat), self.batch_size)
        for s in tqdm(starts, desc="sample", disable=not self.progress, dynamic_ncols=True):
            ids, mask = encode_prompts(self.tokenizer, flat[s : s + self.batch_size], self.device)
            # the model has no positions past max_position_embeddings: cap a generic budget (1024)
            room = int(self.model.config.max_position_embeddings) - ids.shape[1]
            ro = generate(
                self.model,
                ids,
                mask,
                max_new_tokens=max(1, min(max_tokens, room)),
                eos_id=self.tokenizer.eos_token_id,
                pad_id=self.tokenizer.pad_token_id,
                temperature=temperature,
                top_p=top_p,
                generator=gen,
            )
            resp = decode_responses(self.tokenizer, ro.response_ids, ro.response_mask)
            out.extend(zip(resp, ro.response_length.long().tolist(), strict=True))
        return [out[i * n : (i + 1) * n] for i in range(len(texts))]
