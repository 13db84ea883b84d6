"""Command line for the data stages (docs/data.md).

    python -m riskrl.data sources
    python -m riskrl.data download --source math500 --out data/raw [--revision SHA]
    python -m riskrl.data prepare  --source math500 --out data/prepared [--split test] [--local PATH ...]
                                   [--template boxed] [--revision SHA] [--limit N] [--decontaminate F ...]
    python -m riskrl.data prepare  --source synthetic --split train --n 512 --seed 0 --difficulty a_digits=3
    python -m riskrl.data validate --train data/prepared/math_train.parquet \\
                                   --benchmarks data/prepared/math500_test.parquet --out data/validation \\
                                   [--max-prompt-length 4096] [--tokenizer PATH]

Errors are one line on stderr (``error: ...``), exit status 1; a failed validation prints one
line per failed expectation and keeps the report in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from riskrl.data.templates import TEMPLATES


def _kv(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def token_length_fn(tokenizer_path: str) -> Callable[[list[dict]], int]:
    """Prompt length in tokens of ``tokenizer_path``'s chat template (plain encoding without one)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_path)

    def length(messages: list[dict]) -> int:
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        else:
            ids = tok("\n".join(m["content"] for m in messages))["input_ids"]
        return len(ids)

    return length


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m riskrl.data", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("sources", help="list the registered sources")

    d = sub.add_parser("download", help="save a Hub source to disk (all configs and splits)")
    d.add_argument("--source", required=True)
    d.add_argument("--out", required=True, help="directory; the copy goes to OUT/<source>/")
    d.add_argument("--revision", default=None, help="Hub revision (commit sha, tag or branch) to pin")
    d.add_argument("--cache-dir", default=None, help="datasets cache (default: HF_DATASETS_CACHE)")

    q = sub.add_parser("prepare", help="write a source in verl's RLHFDataset parquet schema")
    q.add_argument("--source", required=True)
    q.add_argument(
        "--out", required=True, help="output directory; writes OUT/<name>.parquet and .summary.json"
    )
    q.add_argument("--split", default=None, help="split (default: the source's first)")
    q.add_argument(
        "--local", nargs="+", action="extend", default=None, help="local copy/copies instead of the Hub"
    )
    q.add_argument("--revision", default=None)
    q.add_argument("--cache-dir", default=None)
    q.add_argument("--template", default=None, choices=list(TEMPLATES), help="default: the source's")
    q.add_argument("--system-prompt", default=None)
    q.add_argument("--limit", type=int, default=None, help="keep the first N rows after deduplication")
    q.add_argument(
        "--decontaminate",
        nargs="+",
        action="extend",
        default=[],
        help="drop problems found in these prepared files",
    )
    q.add_argument(
        "--data-source", default=None, help="data_source of the rows (local source; default 'local')"
    )
    q.add_argument("--name", default=None, help="output file stem (default <source>_<split>)")
    q.add_argument("--n", type=int, default=None, help="synthetic: number of problems")
    q.add_argument("--seed", type=int, default=0, help="synthetic: sampling seed")
    q.add_argument(
        "--difficulty", nargs="+", type=_kv, action="extend", default=[], help="synthetic: KEY=VALUE ..."
    )

    v = sub.add_parser("validate", help="great-expectations suites over prepared files")
    v.add_argument(
        "--train", nargs="+", action="extend", default=[], help="training files (checked for contamination)"
    )
    v.add_argument("--benchmarks", nargs="+", action="extend", default=[], help="benchmark / test files")
    v.add_argument("--out", required=True, help="directory for validation.json, results/ and data_docs/")
    v.add_argument(
        "--max-prompt-length",
        type=int,
        default=None,
        help="bound on prompt length (chars, or tokens with --tokenizer)",
    )
    v.add_argument(
        "--tokenizer", default=None, help="measure prompts in tokens of this tokenizer (path or Hub name)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import riskrl.data as data

    try:
        if args.cmd == "sources":
            for s in data.SOURCES.values():
                print(f"{s.name:14s} {s.hub_id or '-':36s} splits={','.join(s.splits):16s} {s.description}")
        elif args.cmd == "download":
            path = data.download(args.source, args.out, revision=args.revision, cache_dir=args.cache_dir)
            print(f"downloaded {args.source} -> {path}")
        elif args.cmd == "prepare":
            res = data.prepare(
                args.source, args.out, split=args.split, local=args.local, revision=args.revision,
                template=args.template, system_prompt=args.system_prompt, limit=args.limit,
                decontaminate=args.decontaminate, data_source=args.data_source, cache_dir=args.cache_dir,
                n=args.n, seed=args.seed, difficulty=dict(args.difficulty), name=args.name,
            )  # fmt: skip
            s = res.summary
            dropped = ", ".join(f"{v} {k}" for k, v in s["dropped"].items() if v) or "none"
            print(f"prepared {s['source']}/{s['split']}: {s['rows']} rows -> {res.path} (dropped: {dropped})")
        elif args.cmd == "validate":
            length_fn = token_length_fn(args.tokenizer) if args.tokenizer else None
            report = data.validate(
                args.train, args.benchmarks, out_dir=args.out, max_prompt_length=args.max_prompt_length,
                length_fn=length_fn,
            )  # fmt: skip
            rows = sum(f["rows"] for f in report.files.values())
            print(
                f"validated {len(report.files)} file(s), {rows} rows: all expectations met -> {report.out_dir}"
            )
    except data.ValidationFailed as e:
        for line in e.lines:
            print(line, file=sys.stderr)
        print(f"error: {e.summary}", file=sys.stderr)  # the lines above are the failures
        return 1
    except data.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
