"""Read a source's rows: from the Hugging Face Hub through ``datasets`` (cached, revision pinned),
from a local copy (``--local``), or download a Hub source to disk for later stages.

Local copies can be: ``.jsonl`` / ``.json`` / ``.parquet`` files (rows in the source's own
column format; several files are concatenated), a directory written by ``download`` or by
``datasets``' ``save_to_disk``, or a clone of the Hub dataset repository.

When the Hub cannot be reached (offline, ``HF_DATASETS_OFFLINE=1``, gated, unknown id) the
error is one ``DataError`` line naming the dataset and the ``--local`` way out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from riskrl.data.sources import DataError, Source
from riskrl.io import atomic_path, write_json

BATCH = 4096


def _hub_error(source: Source, config: str | None, split: str | None, err: BaseException) -> DataError:
    what = source.hub_id + (f" (config {config})" if config else "") + (f" split {split}" if split else "")
    reason = " ".join(str(err).split())[:160] or type(err).__name__
    return DataError(
        f"cannot load {what} from the Hugging Face Hub ({type(err).__name__}: {reason}); "
        f"fetch it where the Hub is reachable (python -m riskrl.data download --source {source.name} --out DIR) "
        f"and give the copy as `local: [DIR/{source.name}]` in the dataset's params.yaml entry "
        f"(CLI: --local DIR/{source.name}; a .jsonl/.parquet file in the source's format also works)"
    )


HUB_CONNECT_TIMEOUT_S = 5.0


def _offline_unless_reachable() -> None:
    """Fail fast offline: when the Hub endpoint does not answer a TCP connect within a few seconds,
    switch datasets/huggingface_hub to offline mode (the local cache is still used), instead of
    their retry loop (tens of warning lines over half a minute)."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=HUB_CONNECT_TIMEOUT_S).close()
        return
    except OSError:
        pass
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        import datasets.config
        import huggingface_hub.constants

        datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
        huggingface_hub.constants.HF_HUB_OFFLINE = True
    except (ImportError, AttributeError):
        pass


def _hub_errors() -> tuple[type[BaseException], ...]:
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import HfHubHTTPError

    # ConnectionError/TimeoutError are OSErrors; datasets raises ConnectionError when offline
    return (OSError, DatasetNotFoundError, HfHubHTTPError)


def _iter_dataset(ds) -> Iterator[dict[str, Any]]:
    for batch in ds.iter(batch_size=BATCH):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            yield dict(zip(keys, values, strict=True))


def load_hub(source: Source, split: str, *, revision: str | None = None, cache_dir: str | None = None):
    """The source's ``split`` from the Hub (configs concatenated) as a ``datasets.Dataset``."""
    import datasets

    _offline_unless_reachable()
    parts = []
    for config in source.configs:
        try:
            parts.append(
                datasets.load_dataset(
                    source.hub_id, config, split=source.splits[split], revision=revision, cache_dir=cache_dir
                )
            )
        except _hub_errors() as e:
            raise _hub_error(source, config, source.splits[split], e) from None
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def _read_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise DataError(f"{path}:{n}: not a JSON line ({e.msg})") from None
        return rows
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):  # columns
            data = [dict(zip(data, vals, strict=True)) for vals in zip(*data.values(), strict=True)]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of rows")
        return data
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json or .parquet")


def _read_dir(path: Path, source: Source, split: str) -> Iterator[dict[str, Any]]:
    import datasets

    hub_split = source.splits.get(split, split)

    def from_disk(p: Path):
        ds = datasets.load_from_disk(str(p))
        if isinstance(ds, datasets.DatasetDict):
            name = hub_split if hub_split in ds else split
            if name not in ds:
                raise DataError(f"{p} has no split {hub_split!r}; it has: {', '.join(ds)}")
            ds = ds[name]
        return ds

    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        yield from _iter_dataset(from_disk(path))
        return
    subdirs = [path / (c or "default") for c in source.configs]
    if all((d / "dataset_dict.json").exists() for d in subdirs):  # written by download()
        for d in subdirs:
            yield from _iter_dataset(from_disk(d))
        return
    for config in source.configs:  # a clone of the Hub repository
        try:
            ds = datasets.load_dataset(str(path), config, split=hub_split)
        except (ValueError, FileNotFoundError) as e:
            raise DataError(
                f"{path}: not a dataset directory for {source.name} ({' '.join(str(e).split())[:160]})"
            ) from None
        yield from _iter_dataset(ds)


def iter_local(paths: Sequence[str | os.PathLike], source: Source, split: str) -> Iterator[dict[str, Any]]:
    """Rows of the local copies ``paths``, in order."""
    for p in map(Path, paths):
        if not p.exists():
            raise DataError(f"local copy not found: {p}")
        if p.is_dir():
            yield from _read_dir(p, source, split)
        else:
            yield from _read_file(p)


def iter_records(
    source: Source,
    split: str,
    *,
    local: Sequence[str | os.PathLike] | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
) -> tuple[Iterator[dict[str, Any]], int | None, str]:
    """``(rows, number of rows or None, origin)`` for ``source``/``split``; local copies win."""
    if split not in source.splits:
        raise DataError(f"source {source.name!r} has no split {split!r}; known: {', '.join(source.splits)}")
    if local:
        for p in map(Path, local):
            if not p.exists():
                raise DataError(f"local copy not found: {p}")
        return iter_local(local, source, split), None, ", ".join(str(p) for p in local)
    if source.hub_id is None:
        raise DataError(
            f"source {source.name!r} reads local files: pass --local PATH (.jsonl, .json or .parquet)"
        )
    ds = load_hub(source, split, revision=revision, cache_dir=cache_dir)
    return _iter_dataset(ds), len(ds), f"hf://{source.hub_id}" + (f"@{revision}" if revision else "")


def download(
    source: Source,
    out_dir: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
) -> Path:
    """Save every config and split of a Hub source to ``out_dir/<name>/<config>/`` (atomically).

    ``prepare(..., local=[out_dir/<name>])`` reads it back without the Hub.
    """
    import datasets

    if source.hub_id is None:
        raise DataError(f"source {source.name!r} is not on the Hub; nothing to download")
    dest = Path(out_dir) / source.name
    _offline_unless_reachable()
    loaded = {}
    for config in source.configs:
        try:
            loaded[config or "default"] = datasets.load_dataset(
                source.hub_id, config, revision=revision, cache_dir=cache_dir
            )
        except _hub_errors() as e:
            raise _hub_error(source, config, None, e) from None
    with atomic_path(dest, is_dir=True) as tmp:
        for name, dsd in loaded.items():
            dsd.save_to_disk(str(tmp / name))
        info = {
            "source": source.name,
            "hub_id": source.hub_id,
            "revision": revision,
            "configs": list(loaded),
            "rows": {name: {s: len(d) for s, d in dsd.items()} for name, dsd in loaded.items()},
        }
        write_json(tmp / "source.json", info)
    return dest
