"""Atomic output helpers: every file a stage writes appears whole or not at all.

Files and folders keep the user's umask (the target's mode when it exists), not the 0600/0700 of
``tempfile``: a shared DVC cache or team folder stays readable.

A stage that fails (bad input, Ctrl-C, an offline Hub) must never leave a truncated
parquet or JSON behind for DVC to cache, so all writers go through a temporary file in
the same directory followed by ``os.replace`` (atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds.

    With ``is_dir=True`` the temporary path is a fresh directory and replaces ``path``
    (an existing directory there is removed first).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        _set_mode(tmp, path, is_dir)
        if is_dir:
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for a moment, in every thread)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _set_mode(tmp: Path, path: Path, is_dir: bool) -> None:
    """mkstemp/mkdtemp create 0600/0700: give the result the target's mode when it exists, else
    the user's umask applied to 0644/0755 (what ``open``/``mkdir`` would have made)."""
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else (0o777 if is_dir else 0o666) & ~_umask()
        os.chmod(tmp, mode)
    except OSError:
        pass


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def write_parquet(path: str | os.PathLike, df) -> Path:
    """Write a pandas DataFrame to parquet atomically (pyarrow engine, no index)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow")
    return Path(path)


def torch_save(path: str | os.PathLike, obj: Any) -> Path:

    with atomic_path(path) as tmp:
        write_bytes(tmp, torch_bytes(obj))
    return Path(path)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` into memory (then written with plain file I/O, whose disk-full error names ENOSPC
    and the file, unlike torch's ``inline_container.cc`` RuntimeError)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as err:
        if err.filename is None:
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise


def _json_default(o: Any):
    # numpy / torch scalars and arrays in metrics dicts
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
