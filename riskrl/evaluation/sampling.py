"""Sampling engines behind one interface, and ``run_evaluation`` that turns them into samples tables.

A ``Sampler`` maps prompts (chat messages, or already rendered strings) to ``n`` completions
each. Engines render chat messages with ``render_prompt`` (the trainer uses the same function),
so evaluation sees exactly the prompts of training. Engines are looked up by name with
``get_sampler``:

* ``"vllm"``: ``VLLMSampler`` below, ``vllm.LLM.generate`` inside a Ray task that asks for a GPU.
* ``"embedded"``: the CPU engine, ``riskrl.embedded.sampler.EmbeddedSampler`` (batched
  ``generate`` of the embedded model). It lives with the embedded model and plugs in by
  implementing ``Sampler``; nothing else here needs to change.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from riskrl.evaluation.schema import SAMPLES_COLUMNS, validate_samples
from riskrl.io import write_parquet

ChatMessages = list[dict[str, str]]
Prompt = str | ChatMessages
Completion = tuple[str, int]  # (response text, number of response tokens)
ScoreFn = Callable[[str, str, Any, dict | None], Any]

PREPARED_COLUMNS = ("prompt", "data_source", "reward_model")  # verl RLHFDataset rows (+ ability, extra_info)
VLLM_MISSING = "the vLLM sampler needs a GPU and the `gpu` extra: pip install 'riskrl[gpu]'; on CPU use the embedded sampler"


@runtime_checkable
class Sampler(Protocol):
    """A generation engine. Implementations: ``VLLMSampler`` (GPU), ``EmbeddedSampler`` (CPU)."""

    def sample(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
    ) -> list[list[Completion]]:
        """Return, for each prompt in order, ``n`` completions ``(text, num_tokens)``.

        Chat-message prompts are rendered with ``render_prompt(messages, tokenizer)``; strings
        are used as they are. ``text`` excludes the prompt; ``num_tokens`` counts response tokens.
        Same ``seed`` and inputs must give the same completions.
        """
        ...


def render_prompt(messages: Prompt, tokenizer: Any | None = None) -> str:
    """The prompt string the model sees, identical in training and evaluation.

    With a tokenizer that has a chat template: ``apply_chat_template(messages, tokenize=False,
    add_generation_prompt=True)``. Otherwise (no tokenizer, or no template) the message contents
    joined by newlines. A string is returned unchanged.
    """
    if isinstance(messages, str):
        return messages
    if isinstance(messages, np.ndarray):  # parquet -> pandas gives object arrays of dicts
        messages = messages.tolist()
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError(
            f"prompt must be a string or a non-empty list of chat messages; got {messages!r:.80}"
        )
    msgs = []
    for m in messages:
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ValueError(f"chat message must be a dict with 'role' and 'content'; got {m!r:.80}")
        msgs.append({"role": str(m["role"]), "content": str(m["content"])})
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return "\n".join(m["content"] for m in msgs)


# ----------------------------------------------------------------------------- registry

#: sampler name -> "module:attribute" of its class, imported only when asked for.
SAMPLERS: dict[str, str] = {
    "vllm": "riskrl.evaluation.sampling:VLLMSampler",
    "embedded": "riskrl.embedded.sampler:EmbeddedSampler",
}


def register_sampler(name: str, target: str) -> None:
    """Register a sampler class as ``"module:attribute"``; a name can be registered once."""
    if name in SAMPLERS and SAMPLERS[name] != target:
        raise ValueError(f"sampler '{name}' is already registered as {SAMPLERS[name]}")
    SAMPLERS[name] = target


def get_sampler(name: str, model: str | os.PathLike, **kwargs: Any) -> Sampler:
    """Instantiate the sampler registered as ``name``: ``cls(model, **kwargs)``, ``model`` being
    the model path or id (the first positional argument of every sampler class)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler '{name}'; known: {', '.join(sorted(SAMPLERS))}")
    module, attr = SAMPLERS[name].split(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise RuntimeError(f"sampler '{name}' is not available: cannot import {module}.{attr} ({e})") from e
    return cls(model, **kwargs)


# ----------------------------------------------------------------------------- evaluation


def _default_score_fn() -> ScoreFn:
    try:
        from riskrl.rewards import compute_score  # imported only when used
    except ImportError as e:
        raise RuntimeError(
            f"the default scorer riskrl.rewards.compute_score is not available ({e}); pass score_fn"
        ) from e
    return compute_score


def _score(result: Any) -> tuple[float, str]:
    """(0/1 correctness, parsed answer) from a reward result: a number or a dict with acc/score/pred."""
    if isinstance(result, Mapping):
        value = result["acc"] if "acc" in result else result.get("score")
        pred = result.get("pred")
        return float(value), "" if pred is None else str(pred)
    return float(result), ""


def load_benchmark(path: str | os.PathLike, *, name: str = "") -> pd.DataFrame:
    """Read a prepared (verl RLHFDataset) parquet and check it has the columns evaluation needs."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"benchmark '{name or path.stem}': file '{path}' does not exist")
    df = pd.read_parquet(path)
    missing = [c for c in PREPARED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"benchmark '{name or path.stem}' ({path}) is missing column(s) {', '.join(map(repr, missing))}; "
            f"needs: {', '.join(PREPARED_COLUMNS)}"
        )
    if len(df) == 0:
        raise ValueError(f"benchmark '{name or path.stem}' ({path}) has no rows")
    return df


def _problem_ids(df: pd.DataFrame) -> list[str]:
    ids = []
    for row, extra in enumerate(df["extra_info"] if "extra_info" in df.columns else [None] * len(df)):
        index = extra.get("index") if isinstance(extra, Mapping) else None
        ids.append(str(row if index is None else index))
    if len(set(ids)) != len(ids):  # extra_info.index not unique: fall back to row numbers
        ids = [str(i) for i in range(len(df))]
    return ids


def run_evaluation(
    sampler: Sampler,
    benchmark_parquets: Mapping[str, str | os.PathLike],
    n: int,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_tokens: int = 1024,
    seed: int = 0,
    score_fn: ScoreFn | None = None,
    out_dir: str | os.PathLike | None = None,
    max_problems: int | None = None,
) -> pd.DataFrame:
    """Sample ``n`` responses per problem of each benchmark, score them, and build the samples table.

    ``score_fn(data_source, solution_str, ground_truth, extra_info)`` defaults to
    ``riskrl.rewards.compute_score``; it returns a number or a dict with ``acc`` (or ``score``)
    and ``pred``. With ``out_dir``, each benchmark's table goes atomically to
    ``<out_dir>/<name>.parquet``. Returns all benchmarks' rows (schema in ``schema.py``).
    """
    if n < 1:
        raise ValueError(f"run_evaluation: n must be >= 1; got n={n}")
    if not benchmark_parquets:
        raise ValueError("run_evaluation: no benchmarks given")
    score_fn = score_fn or _default_score_fn()
    frames = {}
    for name, path in benchmark_parquets.items():
        df = load_benchmark(path, name=name)
        frames[name] = df.iloc[:max_problems] if max_problems is not None else df
    prompts_of = {name: [p.tolist() if isinstance(p, np.ndarray) else p for p in df["prompt"]]
                  for name, df in frames.items()}
    kw = dict(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    if hasattr(sampler, "sample_benchmarks"):  # every benchmark in one pass: one engine start per GPU, not per benchmark
        outputs_of = dict(zip(prompts_of, sampler.sample_benchmarks(list(prompts_of.values()), **kw), strict=True))
    else:
        outputs_of = {name: sampler.sample(prompts, **kw) for name, prompts in prompts_of.items()}
    tables = []
    for name, df in frames.items():
        prompts, outputs = prompts_of[name], outputs_of[name]
        if len(outputs) != len(prompts) or any(len(o) != n for o in outputs):
            got = sorted({len(o) for o in outputs})
            raise RuntimeError(
                f"sampler {type(sampler).__name__} returned {len(outputs)} prompt(s) x {got} completion(s) "
                f"for benchmark '{name}'; expected {len(prompts)} x {n}"
            )
        rows = []
        for pid, (_, row), outs in zip(_problem_ids(df), df.iterrows(), outputs, strict=True):
            extra = row.get("extra_info")
            extra = dict(extra) if isinstance(extra, Mapping) else None
            truth = row["reward_model"]["ground_truth"]
            for j, (text, num_tokens) in enumerate(outs):
                score, pred = _score(score_fn(row["data_source"], text, truth, extra))
                rows.append((name, pid, j, text, pred, score, int(num_tokens)))
        table = validate_samples(
            pd.DataFrame(rows, columns=list(SAMPLES_COLUMNS)), source=f"samples of '{name}'"
        )
        if out_dir is not None:
            write_parquet(Path(out_dir) / f"{name}.parquet", table)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


# ----------------------------------------------------------------------------- vLLM (GPU)


def _require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError(VLLM_MISSING)


def _require_gpu_cluster(tensor_parallel_size: int = 1) -> float:
    """The cluster's GPU count; one line if it cannot hold one engine of ``tensor_parallel_size`` GPUs."""
    import ray

    res = ray.cluster_resources()
    gpus = float(res.get("GPU", 0))
    if gpus == 0:
        raise RuntimeError(
            f"the Ray cluster has no GPU (CPU={res.get('CPU', 0):g}, GPU=0); "
            "the vLLM sampler needs one; on CPU use the embedded sampler"
        )
    if gpus < tensor_parallel_size:
        raise RuntimeError(
            f"the vLLM sampler's tensor_parallel_size={tensor_parallel_size} needs {tensor_parallel_size} GPUs "
            f"per engine but the Ray cluster has {gpus:g}"
        )
    return gpus


def problem_seed(seed: int, index: int) -> int:
    """The sampling seed of problem ``index`` (its position in the benchmark) under run seed ``seed``:
    independent of which engine or shard samples it, distinct across problems."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0] >> 1)


def shard_bounds(num_items: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous, near-equal ``[start, stop)`` ranges covering ``num_items`` in order (no empty one)."""
    shards = max(1, min(shards, num_items))
    size, extra = divmod(num_items, shards)
    bounds, start = [], 0
    for k in range(shards):
        stop = start + size + (k < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def _vllm_generate(
    model: str,
    prompts: list[Prompt],
    sampling: dict[str, Any],
    llm_kwargs: dict[str, Any],
    seeds: list[int] | None = None,
) -> list[list[Completion]]:
    """Runs on a GPU worker (one engine): load ``vllm.LLM``, render the prompts with its tokenizer,
    generate ``n`` per prompt, prompt ``i`` with ``SamplingParams(seed=seeds[i])`` (default: the
    run's seed for all). One ``generate`` call with one ``SamplingParams`` per prompt, as vLLM
    takes them; an engine that accepts a single ``SamplingParams`` per call gets one call per prompt."""
    try:
        import vllm
    except ImportError as e:
        raise RuntimeError(VLLM_MISSING) from e
    llm = vllm.LLM(model=model, seed=sampling["seed"], **llm_kwargs)
    tokenizer = llm.get_tokenizer()
    texts = [render_prompt(p, tokenizer) for p in prompts]
    seeds = [sampling["seed"]] * len(texts) if seeds is None else list(seeds)
    params = [vllm.SamplingParams(**{**sampling, "seed": s}) for s in seeds]
    if len(set(seeds)) == 1:
        results = llm.generate(texts, params[0])
    else:
        try:
            results = llm.generate(texts, params)
        except (TypeError, AttributeError):  # an engine without per-prompt SamplingParams
            results = [llm.generate([t], sp)[0] for t, sp in zip(texts, params, strict=True)]
    return [[(o.text, len(o.token_ids)) for o in r.outputs] for r in results]


class VLLMSampler:
    """vLLM on the cluster's GPUs: the prompts are split into contiguous shards, one Ray task per
    engine, each ``LLM(model, tensor_parallel_size=...)`` on ``tensor_parallel_size`` GPUs running
    ``generate(prompts, SamplingParams(n, temperature, top_p, max_tokens, seed))``. Problem ``i``
    is sampled with seed ``problem_seed(seed, i)``, so the samples do not depend on how many
    engines there are. ``sample_benchmarks`` samples several benchmarks in one pass (one engine
    per GPU group for all of them, problem ``i`` of each benchmark still seeded by its own index).
    ``engines`` defaults to the cluster's GPUs // ``tensor_parallel_size`` (at most one per
    prompt); Ray is started locally if not running.

    Needs the ``gpu`` extra and a Ray cluster with enough GPUs; both are checked before
    submitting, each with a one-line ``RuntimeError``.
    """

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        engines: int | None = None,
        ray_address: str | None = None,
        gpu_memory_utilization: float = 0.85,
        dtype: str = "auto",
        max_model_len: int | None = None,
        **llm_kwargs: Any,
    ) -> None:
        if int(tensor_parallel_size) < 1:
            raise ValueError(f"VLLMSampler: tensor_parallel_size must be >= 1; got {tensor_parallel_size}")
        if engines is not None and int(engines) < 1:
            raise ValueError(f"VLLMSampler: engines must be >= 1; got {engines}")
        self.model = str(model)
        self.tensor_parallel_size = int(tensor_parallel_size)
        self.engines = None if engines is None else int(engines)
        self.ray_address = ray_address
        self.llm_kwargs = {
            "gpu_memory_utilization": gpu_memory_utilization,
            "dtype": dtype,
            "tensor_parallel_size": self.tensor_parallel_size,
            **llm_kwargs,
        }
        if max_model_len is not None:
            self.llm_kwargs["max_model_len"] = max_model_len

    def num_engines(self, num_prompts: int, cluster_gpus: float) -> int:
        """How many engines (Ray tasks) sample ``num_prompts`` prompts on ``cluster_gpus`` GPUs."""
        fit = max(1, int(cluster_gpus // self.tensor_parallel_size))
        return max(1, min(self.engines or fit, num_prompts))

    def sample(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
    ) -> list[list[Completion]]:
        return self.sample_benchmarks([prompts], n=n, temperature=temperature, top_p=top_p,
                                      max_tokens=max_tokens, seed=seed)[0]

    def sample_benchmarks(
        self,
        benchmarks: Sequence[Sequence[Prompt]],
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
    ) -> list[list[list[Completion]]]:
        """``sample`` for several prompt lists at once: their concatenation is sharded over the
        engines (an engine starts once for all of them, where a vLLM start is a model load), and
        problem ``i`` of each list is seeded with ``problem_seed(seed, i)``, as ``sample`` seeds it."""
        _require_vllm()
        import ray

        if not ray.is_initialized():
            ray.init(address=self.ray_address, include_dashboard=False)
        gpus = _require_gpu_cluster(self.tensor_parallel_size)
        groups = [list(g) for g in benchmarks]
        prompts = [p for g in groups for p in g]
        seeds = [problem_seed(seed, i) for g in groups for i in range(len(g))]
        outputs: list[list[Completion]] = []
        if prompts:
            sampling = {"n": n, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed}
            task = ray.remote(num_gpus=self.tensor_parallel_size)(_vllm_generate)
            refs = [
                task.remote(self.model, prompts[a:b], sampling, self.llm_kwargs, seeds[a:b])
                for a, b in shard_bounds(len(prompts), self.num_engines(len(prompts), gpus))
            ]
            outputs = [out for shard in ray.get(refs) for out in shard]
        ends = np.cumsum([0] + [len(g) for g in groups])
        return [outputs[a:b] for a, b in zip(ends[:-1], ends[1:], strict=True)]
