"""Command line of the embedded backend: ``python -m riskrl.embedded COMMAND ...``.

    init-model --out DIR                       tiny Qwen2 + character tokenizer (save_pretrained)
    make-data  --out FILE --split train --n N  task rows in the prepared parquet schema
    sft        --model DIR --data FILE --out DIR
    train      --model DIR --data FILE --out DIR --estimator riskpo --lr 3e-5 --seed 0 [--resume]

Every config field is also a flag (``--steps 100``, ``--riskpo-mode batch``); ``--config
FILE.yaml`` reads a params section first, flags override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from riskrl.embedded.config import field_docs, from_dict


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


def _build(cls: type, args: argparse.Namespace, section: str) -> Any:
    d: dict[str, Any] = {}
    if getattr(args, "config", None):
        import yaml

        with open(args.config) as fh:
            loaded = yaml.safe_load(fh) or {}
        d.update(loaded.get(section, loaded) if isinstance(loaded, dict) else {})
    names = {f.name for f in dataclasses.fields(cls)}
    d.update({k: v for k, v in vars(args).items() if k in names and v is not None})
    return from_dict(cls, d, section=section)


def main(argv: list[str] | None = None) -> int:
    from riskrl.embedded.model import ModelConfig
    from riskrl.embedded.sft import SFTConfig
    from riskrl.embedded.task import SPLITS, TaskConfig
    from riskrl.embedded.trainer import TrainConfig

    ap = argparse.ArgumentParser(prog="python -m riskrl.embedded", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init-model", help="build the tokenizer and a random tiny model")
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="YAML file; its 'model' section (or the whole file) is read")
    _add_fields(p, ModelConfig)
    p = sub.add_parser("make-data", help="write task rows (prepared parquet schema)")
    p.add_argument("--out", required=True)
    p.add_argument("--split", choices=SPLITS, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="YAML file; its 'task' section (or the whole file) is read")
    _add_fields(p, TaskConfig)
    p = sub.add_parser("sft", help="supervised warm start -> base policy")
    p.add_argument("--config", help="YAML file; its 'sft' section (or the whole file) is read")
    _add_fields(p, SFTConfig)
    p = sub.add_parser("train", help="RL with grpo / rs_grpo / riskpo")
    p.add_argument("--config", help="YAML file; its 'train' section (or the whole file) is read")
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
