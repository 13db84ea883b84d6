"""The tiny causal LM: a ``transformers`` Qwen2 (or Llama) config, randomly initialised.

Saved with ``save_pretrained`` next to the character tokenizer, so every later stage loads it
with ``AutoModelForCausalLM`` / ``AutoTokenizer`` exactly as it would load a Hub model. The
default (hidden 128, 4 layers, MLP 384, tied embeddings) has about 0.86 M parameters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedModel, Qwen2Config
from transformers.utils import logging as hf_logging

from riskrl.embedded.configs import ModelConfig  # noqa: F401  (re-exported)
from riskrl.embedded.tokenizer import build_tokenizer
from riskrl.io import atomic_path, write_json

ARCHS = {"qwen2": Qwen2Config, "llama": LlamaConfig}
hf_logging.disable_progress_bar()  # per-shard bars for a 3 MB model are noise in every log


def build_model(cfg: ModelConfig, tokenizer: Any) -> PreTrainedModel:
    """A freshly initialised causal LM for ``tokenizer`` (seeded by ``cfg.seed``)."""
    hf_cfg = ARCHS[cfg.arch](
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = AutoModelForCausalLM.from_config(hf_cfg, attn_implementation="sdpa")
    return model


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_pretrained(model: PreTrainedModel, tokenizer: Any, out: str | os.PathLike, **meta: Any) -> Path:
    """Save model + tokenizer (+ ``riskrl_meta.json``) as one directory, atomically."""
    with atomic_path(out, is_dir=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if meta:
            write_json(tmp / "riskrl_meta.json", meta)
    return Path(out)


def load_pretrained(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[PreTrainedModel, Any]:
    """Load a saved policy exactly as a Hub model is loaded (fp32, eval mode)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no model at {path} (config.json missing); run `python -m riskrl.embedded init-model`"
        )
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    return model.to(device).eval(), tokenizer


def init_model(cfg: ModelConfig, out: str | os.PathLike) -> Path:
    """Build the tokenizer and a random model from ``cfg`` and save both to ``out``."""
    tokenizer = build_tokenizer(cfg.chars)
    model = build_model(cfg, tokenizer)
    from riskrl.embedded.configs import to_dict

    return save_pretrained(
        model, tokenizer, out, stage="init", model_config=to_dict(cfg), num_params=num_params(model)
    )
