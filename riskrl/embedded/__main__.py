"""Command line of the embedded backend: ``python -m riskrl.embedded COMMAND ...``.

    init-model --out DIR                       tiny Qwen2 + character tokenizer (save_pretrained)
    make-data  --out FILE --split train --n N  task rows in the prepared parquet schema
    sft        --model DIR --data FILE --out DIR
    train      --model DIR --data FILE --out DIR --estimator riskpo --lr 3e-5 --seed 0 [--resume]
    train      --config params.yaml --variant riskpo_batch --model DIR --data FILE --out DIR

Every config field is also a flag (``--steps 100``, ``--estimator-options '{"beta": 4}'``).
``--config params.yaml`` reads the project's params.yaml (validated by its schema,
``riskrl.config``): the command's section (``model``, ``task``, ``sft``, ``train``), and for
``train`` one variant of ``train.variants`` (``--variant``, default the first) at ``--lr`` /
``--seed`` (default the first of ``train.lrs`` / ``train.seeds``) with the shared train keys.
Any other YAML file is read as the section's flat keys (or the whole file). Flags override both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from riskrl.embedded.configs import field_docs, from_dict


def _add_fields(p: argparse.ArgumentParser, cls: type) -> None:
    """One flag per config field, help = the field's docstring and default."""
    docs = field_docs(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = defaults[f.name]
        shown = "" if default is dataclasses.MISSING else f" (default: {default!r})".replace("%", "%%")
        kw: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "help": docs.get(f.name, "").replace("%", "%%") + shown,
        }
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif f.type in ("int", int):
            p.add_argument(flag, type=int, **kw)
        elif f.type in ("float", float):
            p.add_argument(flag, type=float, **kw)
        elif str(f.type).startswith("dict"):
            p.add_argument(flag, type=json.loads, metavar="JSON", **kw)
        else:
            p.add_argument(flag, type=str, **kw)


def _project_params(path: str) -> Any:
    """The validated project params (``riskrl.config.Params``) if ``path`` is a project
    params.yaml (its ``train`` section declares ``variants``), else None."""
    from riskrl.config import load_params, read_yaml

    loaded = read_yaml(path)
    train = loaded.get("train") if isinstance(loaded, dict) else None
    return load_params(path) if isinstance(train, dict) and "variants" in train else None


def _flags(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def _build(cls: type, args: argparse.Namespace, section: str) -> Any:
    """``cls`` from ``--config`` (project params or a flat section) overridden by the flags."""
    from riskrl.config import read_yaml

    flags = _flags(cls, args)
    config = getattr(args, "config", None)
    params = _project_params(config) if config else None
    if getattr(args, "variant", None) and params is None:
        raise ValueError("--variant needs --config with the project's params.yaml (train.variants)")
    if params is not None:
        if section == "train":
            return _train_from_params(params, args, flags)
        base = {"model": dataclasses.asdict(params.model), "task": dataclasses.asdict(params.task),
                "sft": dict(params.sft)}[section]
        return from_dict(cls, {**base, **flags}, section=section)
    d: dict[str, Any] = {}
    if config:
        loaded = read_yaml(config) or {}
        d.update(loaded.get(section, loaded) if isinstance(loaded, dict) else {})
    d.update(flags)
    return from_dict(cls, d, section=section)


def _train_from_params(params: Any, args: argparse.Namespace, flags: dict[str, Any]) -> Any:
    """One run of the project's grid: ``--variant`` (default the first of train.variants) at
    ``--lr``/``--seed`` (default the first of the grid); ``--estimator`` replaces the variant's
    estimator and options."""
    grid = params.train
    variant = args.variant or next(iter(grid.variants))
    lr, seed = flags.pop("lr", grid.lrs[0]), flags.pop("seed", grid.seeds[0])
    paths = {k: flags.pop(k, "") for k in ("model", "data", "out")}
    cfg = grid.run_config(variant, lr, seed, **paths)
    if "estimator" in flags:
        flags.setdefault("estimator_options", {})
    return dataclasses.replace(cfg, **flags)


def main(argv: list[str] | None = None) -> int:
    from riskrl.embedded.model import ModelConfig
    from riskrl.embedded.sft import SFTConfig
    from riskrl.embedded.task import SPLITS, TaskConfig
    from riskrl.embedded.trainer import TrainConfig

    ap = argparse.ArgumentParser(prog="python -m riskrl.embedded", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init-model", help="build the tokenizer and a random tiny model")
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="params.yaml (its 'model' section), or a YAML file of model keys")
    _add_fields(p, ModelConfig)
    p = sub.add_parser("make-data", help="write task rows (prepared parquet schema)")
    p.add_argument("--out", required=True)
    p.add_argument("--split", choices=SPLITS, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="params.yaml (its 'task' section), or a YAML file of task keys")
    _add_fields(p, TaskConfig)
    p = sub.add_parser("sft", help="supervised warm start -> base policy")
    p.add_argument("--config", help="params.yaml (its 'sft' section), or a YAML file of sft keys")
    _add_fields(p, SFTConfig)
    p = sub.add_parser("train", help="RL with any registered verl estimator (grpo, rs_grpo, riskpo, ...)")
    p.add_argument("--config", help="params.yaml (one variant of its grid), or a YAML file of train keys")
    p.add_argument("--variant", help="with --config params.yaml: a name of train.variants (default: the first)")
    _add_fields(p, TrainConfig)
    args = ap.parse_args(argv)

    try:
        if args.cmd == "init-model":
            from riskrl.embedded.model import init_model

            cfg = _build(ModelConfig, args, "model")
            print(init_model(cfg, args.out))
        elif args.cmd == "make-data":
            from riskrl.embedded.task import write_split

            task = _build(TaskConfig, args, "task")
            write_split(args.out, args.n, args.seed, args.split, **dataclasses.asdict(task))
            print(args.out)
        elif args.cmd == "sft":
            from riskrl.embedded.sft import run_sft

            print(json.dumps(run_sft(_build(SFTConfig, args, "sft")), indent=2, default=str))
        elif args.cmd == "train":
            from riskrl.embedded.trainer import train

            info = train(_build(TrainConfig, args, "train"))
            print(
                json.dumps(
                    {k: info[k] for k in ("estimator", "lr", "seed", "mode", "steps", "mean_step_seconds")}
                )
            )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
