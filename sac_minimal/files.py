"""Writing files so that a crash, a preemption or a full disk never leaves a truncated one behind.

Each writer writes to a temporary file in the destination's folder and renames it over the destination with
``os.replace``, which is atomic on POSIX and Windows: a reader sees the old file or the new one, never half of one.
A write that fails (a full disk, a missing permission) raises :class:`WriteError`, which names the file and says
that nothing already written was lost and that running the same command again resumes. A process killed between
writing a temporary file and renaming it leaves the temporary file behind; :func:`remove_stale_temporaries` clears
such leftovers when a run or a grid starts again. Files get the permissions the user's umask asks for (``tempfile``
alone would make every record private, mode 0600).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import torch

TEMPORARY_SUFFIX = ".tmp"


class WriteError(OSError):
    """A file could not be written; the message names it and says how to resume."""


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _replace_with(path: Path, write) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    except OSError as error:
        raise WriteError(error.errno, f"could not write {path} ({error.strerror or error}); nothing already written "
                                      "was lost: fix that, then run the same command again to resume") from error
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise WriteError(error.errno, f"could not write {path} ({error.strerror or error}); the previous version of "
                                      "it (if any) is intact and nothing already written was lost: free some space "
                                      "or fix the permission, then run the same command again to resume") from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: str | Path, older_than_s: float = 60.0) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder`` (``.<name>.*.tmp``, older than
    ``older_than_s``, so that another process's write in progress is left alone); returns what was deleted."""
    removed = []
    if Path(folder).is_symlink():
        raise ValueError(f"{folder} is a symbolic link; a record's folders are plain folders (its leftovers are only "
                         "cleaned inside the record, never where a link points)")
    for path in Path(folder).glob(f".*{TEMPORARY_SUFFIX}") if Path(folder).is_dir() else ():
        try:
            if time.time() - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    return removed


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    _replace_with(Path(path), lambda stream: stream.write(text.encode()))


def write_json_atomic(path: str | Path, value, indent: int | None = 1) -> None:
    """Write ``value`` as JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(value, indent=indent))


def save_npy_atomic(path: str | Path, array) -> None:
    """``np.save`` to ``path`` atomically (the same bytes as ``np.save(path, array)``)."""
    import numpy as np

    _replace_with(Path(path), lambda stream: np.save(stream, array))


def save_torch_atomic(path: str | Path, value) -> None:
    """``torch.save`` to ``path`` atomically; a failed write (torch reports a full disk as a ``RuntimeError``) is a
    :class:`WriteError`."""
    def write(stream):
        try:
            torch.save(value, stream)
        except RuntimeError as error:
            raise OSError(28 if "No space" in str(error) else 5, str(error).splitlines()[0][:160]) from error

    _replace_with(Path(path), write)


def read_json(path: str | Path, what: str = "file") -> dict:
    """Read a JSON file; a truncated, corrupt or absurdly nested one, or a path that is not a plain file (a pipe
    would block the reader for ever), raises a ``ValueError`` that names it."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"{what} {path} is not a plain file; replace it with the file itself")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {path} is truncated or corrupt ({error})") from error
    except RecursionError:
        raise ValueError(f"{what} {path} is nested too deeply to be a {what}; it is corrupt or was crafted") from None
