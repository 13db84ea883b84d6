"""Test-only stand-in for vLLM's offline API, backed by ``transformers`` (never shipped).

Put ``tests/evaluation/fake_vllm`` on ``PYTHONPATH`` (of the Ray workers too) and ``import vllm``
finds this. What riskrl's sampler uses, with vLLM's semantics:

* ``LLM(model=..., seed=..., **engine_kwargs)``: loads the HF model and tokenizer from ``model``.
* ``LLM.get_tokenizer()``.
* ``LLM.generate(prompts, sampling_params)``: ``sampling_params`` one ``SamplingParams`` for all
  prompts or a list, one per prompt; returns one ``RequestOutput`` per prompt whose ``outputs``
  are ``n`` ``CompletionOutput`` with ``.text`` (prompt excluded, no EOS) and ``.token_ids``
  (EOS included when sampled). A request with ``seed`` gets its own generator seeded with it (so
  its samples depend only on prompt and seed, never on the batch around it); without a seed the
  engine's generator, seeded by ``LLM(seed=...)``, runs on in call order.

With ``$FAKE_VLLM_LOG`` set, each engine appends one JSON line per ``LLM(...)`` and per
``generate`` (pid, model, engine kwargs, the GPUs Ray gave the worker, number of prompts).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

__version__ = "0.0+riskrl.test"


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]


@dataclass
class RequestOutput:
    prompt: str
    outputs: list[CompletionOutput] = field(default_factory=list)


def _log(**entry) -> None:
    path = os.environ.get("FAKE_VLLM_LOG")
    if path:
        entry.update(pid=os.getpid(), gpus=os.environ.get("CUDA_VISIBLE_DEVICES"))
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


class LLM:
    def __init__(self, model: str, seed: int = 0, **engine_kwargs) -> None:
        self.model_path = str(model)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path).eval()
        self.generator = torch.Generator().manual_seed(int(seed))
        _log(event="engine", model=self.model_path, seed=seed, kwargs=engine_kwargs)

    def get_tokenizer(self):
        return self.tokenizer

    @torch.no_grad()
    def _sample(self, prompt: str, sp: SamplingParams) -> list[CompletionOutput]:
        gen = self.generator if sp.seed is None else torch.Generator().manual_seed(int(sp.seed))
        ids = torch.tensor([self.tokenizer(prompt)["input_ids"]] * sp.n)
        eos = self.tokenizer.eos_token_id
        out = torch.empty(sp.n, 0, dtype=torch.long)
        done = torch.zeros(sp.n, dtype=torch.bool)
        for _ in range(sp.max_tokens):
            logits = self.model(input_ids=torch.cat([ids, out], dim=1)).logits[:, -1].float()
            if sp.temperature == 0:
                nxt = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / sp.temperature, dim=-1)
                if sp.top_p < 1:
                    sorted_p, order = probs.sort(-1, descending=True)
                    drop = sorted_p.cumsum(-1) - sorted_p > sp.top_p
                    probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0))
                nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
            nxt = nxt.masked_fill(done, eos)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done |= nxt == eos
            if done.all():
                break
        results = []
        for j, row in enumerate(out.tolist()):
            token_ids = row[: row.index(eos) + 1] if eos in row else row
            text = self.tokenizer.decode([t for t in token_ids if t != eos], skip_special_tokens=True)
            results.append(CompletionOutput(index=j, text=text, token_ids=token_ids))
        return results

    def generate(self, prompts, sampling_params=None, use_tqdm: bool = True) -> list[RequestOutput]:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if sampling_params is None:
            sampling_params = SamplingParams()
        params = list(sampling_params) if isinstance(sampling_params, (list, tuple)) else [sampling_params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError(f"{len(params)} SamplingParams for {len(prompts)} prompts")
        _log(event="generate", model=self.model_path, prompts=len(prompts))
        return [RequestOutput(prompt=p, outputs=self._sample(p, sp)) for p, sp in zip(prompts, params, strict=True)]
