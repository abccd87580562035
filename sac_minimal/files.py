"""Writing files so that a crash, a preemption or a full disk never leaves a truncated one behind.

Each writer writes to a temporary file in the destination's folder and renames it over the destination with
``os.replace``, which is atomic on POSIX and Windows: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch


def _replace_with(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    _replace_with(Path(path), lambda stream: stream.write(text.encode()))


def write_json_atomic(path: str | Path, value, indent: int | None = 1) -> None:
    """Write ``value`` as JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(value, indent=indent))


def save_torch_atomic(path: str | Path, value) -> None:
    """``torch.save`` to ``path`` atomically."""
    _replace_with(Path(path), lambda stream: torch.save(value, stream))


def read_json(path: str | Path, what: str = "file") -> dict:
    """Read a JSON file; a truncated or corrupt one raises a ``ValueError`` that names it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {path} is truncated or corrupt ({error})") from error
