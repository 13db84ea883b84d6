"""The embedded backend's per-stage config dataclasses (the device/thread helpers are in
``riskrl.embedded.runtime``; the params.yaml schema that builds these is ``riskrl.config``).

One flat dataclass per stage (``ModelConfig``, ``SFTConfig``, ``TrainConfig``; ``TaskConfig``
lives with the task); the field names are the keys of the stage's params.yaml section and every
field has a docstring. ``from_dict(cls, d)`` builds one with a one-line error for unknown keys;
``estimator_section(estimator, options)`` is the complete ``algorithm.<estimator>`` section a
``TrainConfig``'s ``estimator_options`` stand for (validated against ``ESTIMATOR_OPTIONS``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

CHARS = "0123456789+-*/=(). "  # the character tokenizer's alphabet
ARCH_NAMES = ("qwen2", "llama")  # transformers architectures of the tiny policy
NORM_KEY = "norm_adv_by_std_in_grpo"  # verl's algorithm key, next to the estimator's own section
PRESET_KEY = "preset"  # riskpo: a RISKPO_PRESETS name, filled in before the keys given


def from_dict(cls: type[T], d: dict[str, Any] | None, *, section: str = "") -> T:
    """Build ``cls`` from ``d``; unknown keys raise one line naming them and the known keys."""
    d = dict(d or {})
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(d) - set(names))
    if unknown:
        where = f" in {section}" if section else ""
        raise ValueError(f"unknown key(s){where}: {', '.join(unknown)}; known: {', '.join(names)}")
    return cls(**d)


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a config dataclass (for ``--help``), read from its source."""
    import ast
    import inspect
    import textwrap

    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs = {}
    for a, b in zip(body, body[1:], strict=False):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


class OptionError(ValueError):
    """A bad estimator option: ``key`` is its name in the options ('' for a cross-key check),
    ``detail`` the rest of the line (``": unknown key ..."`` or ``"=0: Input should ..."``)."""

    def __init__(self, key: str, detail: str) -> None:
        self.key, self.detail = key, detail
        super().__init__(f"{key}{detail}" if key else detail.removeprefix(": "))

    def under(self, prefix: str) -> str:
        """The message with the key's full path, e.g. ``train.variants.rs_grpo_b2.beta=...``."""
        return f"{prefix}.{self.key}{self.detail}" if self.key else f"{prefix}{self.detail}"


def estimator_keys(estimator: str) -> list[str]:
    """The ``algorithm.<estimator>`` keys an estimator takes (riskpo also ``preset``); [] for
    verl's own estimators, which read only verl's algorithm keys."""
    from riskrl.estimators.options import ESTIMATOR_OPTIONS

    cls = ESTIMATOR_OPTIONS.get(estimator)
    keys = list(cls.model_fields) if cls is not None else []
    return [PRESET_KEY, *keys] if estimator == "riskpo" else keys


def estimator_section(estimator: str, options: dict[str, Any] | None, *, also_known: tuple[str, ...] = ()) -> dict:
    """The complete ``algorithm.<estimator>`` section of one run: ``options`` validated by the
    estimator's options class (``riskrl.estimators.options.ESTIMATOR_OPTIONS``), defaults filled
    in; for riskpo a ``preset`` (``RISKPO_PRESETS``) is applied first and the keys given win.
    ``{}`` for verl's own estimators (grpo, rloo, grpo_passk, ...), which take no section.
    Raises :class:`OptionError` naming the key; ``also_known`` only widens its hint."""
    from pydantic import ValidationError

    from riskrl.estimators.options import ESTIMATOR_OPTIONS, RISKPO_PRESETS

    opts = dict(options or {})
    known = estimator_keys(estimator)
    for key in opts:
        if key not in known:
            hint = ", ".join([*known, *also_known]) or f"none: {estimator} takes no options"
            raise OptionError(key, f": unknown key (known: {hint})")
    cls = ESTIMATOR_OPTIONS.get(estimator)
    if cls is None:
        return {}
    if PRESET_KEY in opts:
        preset = opts.pop(PRESET_KEY)
        if preset not in RISKPO_PRESETS:
            raise OptionError(PRESET_KEY, f"={preset!r}: unknown preset (known: {', '.join(RISKPO_PRESETS)})")
        opts = {**RISKPO_PRESETS[preset], **opts}
    try:
        return cls(**opts).model_dump()
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(x) for x in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "value_error" or not loc:
            raise OptionError(loc, f": {msg}") from None
        raise OptionError(loc, f"={e['input']!r}: {msg}") from None


@dataclass
class ModelConfig:
    """Architecture of the tiny policy (params.yaml section ``model``)."""

    arch: str = "qwen2"
    """transformers architecture: ``qwen2`` or ``llama``"""
    hidden_size: int = 128
    """width of the residual stream"""
    num_layers: int = 4
    """number of transformer blocks"""
    num_heads: int = 4
    """attention heads (head dim = hidden_size / num_heads)"""
    num_kv_heads: int = 4
    """key/value heads (grouped-query attention when < num_heads)"""
    intermediate_size: int = 384
    """width of the SwiGLU MLP"""
    max_positions: int = 64
    """longest sequence (prompt + response) the model is built for"""
    chars: str = CHARS
    """the tokenizer's alphabet (one token per character, plus 4 special tokens)"""
    seed: int = 0
    """seed of the random initialisation"""

    def __post_init__(self) -> None:
        if self.arch not in ARCH_NAMES:
            raise ValueError(f"unknown arch {self.arch!r}; known: {', '.join(ARCH_NAMES)}")
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must divide by num_heads ({self.num_heads}) "
                f"and num_heads by num_kv_heads ({self.num_kv_heads})"
            )


@dataclass
class SFTConfig:
    """Supervised warm start (params.yaml section ``sft``; paths come from the command line)."""

    model: str = ""
    """directory of the initial model (``init-model`` output)"""
    data: str = ""
    """prepared parquet with the SFT problems (the train split)"""
    out: str = ""
    """output directory: the base policy, loadable with AutoModelForCausalLM"""
    steps: int = 600
    """most optimizer steps (also the length of the learning-rate schedule)"""
    target_acc: float = 0.35
    """stop once the held-out sampled accuracy (temperature 1) reaches this; 0 = run all steps"""
    eval_rows: int = 256
    """rows set aside from the data (never trained on) to measure that accuracy"""
    eval_every: int = 10
    """steps between two accuracy checks"""
    eval_samples: int = 2
    """samples per held-out row at each check"""
    batch_size: int = 128
    """sequences per step"""
    lr: float = 3e-3
    """peak AdamW learning rate (linear warmup, cosine decay to lr * min_lr_frac)"""
    warmup_steps: int = 30
    """linear warmup steps"""
    min_lr_frac: float = 0.1
    """final learning rate as a fraction of lr"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    max_examples: int = 0
    """train on the first N rows only (0 = all rows)"""
    seed: int = 0
    """seed of batch sampling"""
    num_threads: int = 1
    """torch intra-op threads (0 = torch default); 1 is fastest when runs share 2 cores"""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda[:i]``"""
    progress: bool = True
    """show a progress bar"""

    def __post_init__(self) -> None:
        for k in ("steps", "batch_size", "eval_every", "eval_samples"):
            if getattr(self, k) < 1:
                raise ValueError(f"sft.{k} must be >= 1, got {getattr(self, k)}")
        if not self.lr > 0:
            raise ValueError(f"sft.lr must be > 0, got {self.lr}")
        if not 0 <= self.target_acc <= 1:
            raise ValueError(f"sft.target_acc must be in [0, 1], got {self.target_acc}")


@dataclass
class TrainConfig:
    """One RL run (params.yaml section ``train``; paths usually come from the command line)."""

    model: str = ""
    """directory of the starting policy (the SFT base); also the KL reference"""
    data: str = ""
    """prepared parquet of training prompts"""
    out: str = ""
    """output directory: model/, checkpoints/, train_metrics.csv, tensorboard/, run.json"""
    estimator: str = "grpo"
    """advantage estimator, a verl registry name: grpo, rs_grpo, riskpo, passk, pkpo, or any other registered one (rloo, grpo_passk, ...)"""
    estimator_options: dict[str, Any] = field(default_factory=dict)
    """the ``algorithm.<estimator>`` section of riskrl's estimators (their ESTIMATOR_OPTIONS keys; defaults fill the rest), e.g. {"beta": 4} for rs_grpo, {"use_q_track_mode": "batch"} or {"preset": "dapo"} for riskpo; verl's own estimators take none"""
    norm_adv_by_std_in_grpo: bool = True
    """algorithm.norm_adv_by_std_in_grpo, read by grpo (false: Dr.GRPO), grpo_passk and riskpo (its paper-std division)"""
    lr: float = 3e-5
    """AdamW learning rate (constant); the step size decides the estimators' story"""
    steps: int = 100
    """RL steps (one generate + one optimizer update each, by default)"""
    prompts_per_step: int = 32
    """prompts per step"""
    n: int = 8
    """samples per prompt (verl's rollout.n)"""
    temperature: float = 1.0
    """sampling temperature (log-probs are taken at the same temperature, as verl does)"""
    top_p: float = 1.0
    """nucleus sampling mass"""
    max_new_tokens: int = 0
    """response budget in tokens; 0 = the longest ground truth in the data plus EOS"""
    clip_ratio: float = 0.2
    """PPO clip range (verl actor.clip_ratio); inactive with one on-policy update per step"""
    ppo_epochs: int = 1
    """passes over each batch"""
    ppo_mini_batches: int = 1
    """optimizer updates per pass (the batch is cut into this many mini-batches)"""
    loss_agg_mode: str = "token-mean"
    """verl loss aggregation: token-mean, seq-mean-token-mean, seq-mean-token-sum, ..."""
    kl_coef: float = 0.0
    """KL-to-base loss coefficient (verl actor.kl_loss_coef); 0 = no reference model"""
    kl_type: str = "low_var_kl"
    """verl KL estimator for the KL loss"""
    entropy_coeff: float = 0.0
    """entropy bonus coefficient (verl actor.entropy_coeff)"""
    weight_decay: float = 0.01
    """AdamW weight decay (verl's default)"""
    grad_clip: float = 1.0
    """max gradient norm (verl's default)"""
    seed: int = 0
    """seed of data order, uids and sampling"""
    save_every: int = 25
    """checkpoint every N steps (0 = none besides the final model)"""
    keep_checkpoints: int = 0
    """keep only the newest N checkpoints (0 = all)"""
    resume: bool = False
    """continue from the newest checkpoint in out/checkpoints (a fresh start if there is none)"""
    num_threads: int = 1
    """torch intra-op threads (0 = torch default); 1 per run when runs share a 2-core machine"""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda[:i]``"""
    tensorboard: bool = True
    """also log to out/tensorboard"""
    progress: bool = True
    """show a progress bar"""

    def __post_init__(self) -> None:
        for k in ("steps", "prompts_per_step", "n", "ppo_epochs", "ppo_mini_batches"):
            if getattr(self, k) < 1:
                raise ValueError(f"train.{k} must be >= 1, got {getattr(self, k)}")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if self.max_new_tokens < 0:
            raise ValueError(f"train.max_new_tokens must be >= 0 (0 = auto), got {self.max_new_tokens}")
        if self.save_every < 0:
            raise ValueError(f"train.save_every must be >= 0, got {self.save_every}")
        try:
            estimator_section(self.estimator, self.estimator_options)
        except OptionError as e:
            raise ValueError(e.under("train.estimator_options")) from None
        if (self.prompts_per_step * self.n) % self.ppo_mini_batches:
            raise ValueError(
                f"prompts_per_step * n ({self.prompts_per_step * self.n}) must divide by ppo_mini_batches ({self.ppo_mini_batches})"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, d, section="train")
