"""Where and with what a result was produced: code, machine and dataset fingerprints.

A recorded result is only worth reading if one can tell whether it still holds. Three fingerprints answer that:

* the code: the git commit (and whether the tree was dirty) plus a SHA-256 of the package's own source files, so
  that a change to ``sac_minimal`` is visible even without git;
* the machine: torch version, device, CPU model and instruction set, and torch's CPU thread count. PyTorch on a
  CPU gives bit-identical training for a seed on the same machine type and thread count; another thread count can
  change the summation order of a reduction, and another instruction set the kernels;
* the dataset: a SHA-256 of the annotation file, the feature format and the feature files (every byte of them
  when they are small, as the surrogate's are; names, sizes and the first and last MiB of each file beyond 1 GiB).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import platform
import re
import subprocess
from pathlib import Path

import numpy as np
import torch

PACKAGE = Path(__file__).resolve().parents[1]
"""The package (core and lab): what the code fingerprint covers."""
FULL_HASH_LIMIT = 1 << 30
"""Datasets up to this many bytes of features are hashed in full (1 GiB)."""
EDGE_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_state(path: Path | None = None) -> dict:
    """``{"commit", "dirty"}`` of the repository holding this package (``unknown`` outside a git checkout); ``dirty``:
    a tracked file under ``path`` (default: the package folder) differs from the commit."""
    folder = path or PACKAGE
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                check=True).stdout.strip()
        # the package's own files: a changed notebook or record does not change what a run ran
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                                    cwd=folder, capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": dirty}


def code_fingerprint() -> str:
    """SHA-256 over the package's ``.py`` files (path and content), independent of git."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


COMMIT = re.compile(r"[0-9a-f]{40}")
"""A full git commit id: the only form of a record's ``commit`` that is ever passed to git."""


def code_changed_since(commit: str, folder: str = "sac_minimal") -> bool | None:
    """Whether the package's code differs from ``commit`` (None when it cannot be told, e.g. no git). Only a full
    40-digit commit id reaches git (as ``<commit>^{commit}``, never as an option): a record is data, and a field
    such as ``--output=FILE`` must not become a git option."""
    if not isinstance(commit, str) or not COMMIT.fullmatch(commit):
        return None
    try:
        result = subprocess.run(["git", "diff", "--quiet", f"{commit}^{{commit}}", "--", folder], cwd=PACKAGE.parent,
                                capture_output=True, check=False)
    except OSError:
        return None
    return {0: False, 1: True}.get(result.returncode)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "") -> dict:
    """The machine type a result depends on: device, torch, CPU model, CPU instruction set, torch's threads."""
    return {
        "device": device or ("cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


MAX_THREADS = 1024
"""More CPU threads than any machine a record is made on: a larger count in a record is malformed."""
PROVENANCE_FIELDS = {"device": str, "torch": str, "cpu": str, "cpu_capability": str, "threads": int, "commit": str,
                     "code_sha256": str, "dirty": (bool, type(None))}
"""The fields every run's provenance must carry, and their types."""


def check_provenance(entry, where: str = "provenance") -> dict:
    """``entry`` if it is a well-formed provenance (:data:`PROVENANCE_FIELDS`, a thread count >= 1, a commit that is
    40 hex digits or ``unknown``); otherwise a ``ValueError`` naming what is wrong. Verification decides how strict
    it is from these fields, so a record that lacks them is an error, not a lenient pass."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: no provenance (got {type(entry).__name__}); the record cannot be verified")
    problems = [f"{name} missing" for name in PROVENANCE_FIELDS if name not in entry]
    problems += [f"{name} is {entry[name]!r}, not {getattr(kind, '__name__', 'bool or null')}"
                 for name, kind in PROVENANCE_FIELDS.items()
                 if name in entry and (not isinstance(entry[name], kind) or
                                       (kind is int and isinstance(entry[name], bool)))]
    if isinstance(entry.get("threads"), int) and not isinstance(entry["threads"], bool) and \
            not 1 <= entry["threads"] <= MAX_THREADS:
        problems.append(f"threads is {entry['threads']}, not between 1 and {MAX_THREADS}")
    if isinstance(entry.get("commit"), str) and entry["commit"] != "unknown" and not COMMIT.fullmatch(entry["commit"]):
        problems.append(f"commit {entry['commit']!r} is not a 40-digit commit id")
    if problems:
        raise ValueError(f"{where} is malformed ({'; '.join(problems)}); the record cannot be verified")
    return entry


def same_machine_type(recorded: dict, current: dict) -> bool:
    """Whether bit-identical results can be expected: the same device, torch, CPU and thread count."""
    keys = ("device", "torch", "cpu", "cpu_capability", "threads")
    return all(recorded.get(key) == current.get(key) for key in keys)


def provenance(device: str = "") -> dict:
    """Where, when and with what a result was produced."""
    return {
        **git_state(),
        "code_sha256": code_fingerprint(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **machine(device),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


@functools.lru_cache(maxsize=64)
def _dataset_fingerprint(root: str, stamp: tuple) -> str:
    root_path = Path(root)
    digest = hashlib.sha256()
    for name in ("annotations/thumos14.json", "feature_format.json"):
        path = root_path / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    features = sorted((root_path / "i3d_features").glob("*.npy"))
    in_full = sum(path.stat().st_size for path in features) <= FULL_HASH_LIMIT
    for path in features:
        digest.update(path.name.encode() + b"\0" + str(path.stat().st_size).encode())
        with open(path, "rb") as handle:
            if in_full:
                digest.update(handle.read())
            else:
                digest.update(handle.read(EDGE_BYTES))
                handle.seek(max(0, path.stat().st_size - EDGE_BYTES))
                digest.update(handle.read())
    return digest.hexdigest()


def dataset_fingerprint(root: str | Path) -> str:
    """SHA-256 of a dataset folder's annotation file, feature format and feature files (see the module docstring);
    cached per folder while every one of those files keeps its size and modification time."""
    root = Path(root).resolve()
    paths = [root / "annotations" / "thumos14.json", root / "feature_format.json",
             *sorted((root / "i3d_features").glob("*.npy"))]
    stamp = tuple((str(path), path.stat().st_size, path.stat().st_mtime_ns) if path.exists() else (str(path),)
                  for path in paths)
    return _dataset_fingerprint(str(root), stamp)
