"""Where and with what a result was produced: code, machine and dataset fingerprints.

A recorded result is only worth reading if one can tell whether it still holds. Three fingerprints answer that:

* the code: the git commit (and whether the tree was dirty) plus a SHA-256 of the package's own source files, so
  that a change to ``sac_minimal`` is visible even without git;
* the machine: torch version, device, CPU model and instruction set, torch's CPU thread count, and a *numerics
  fingerprint* (:func:`numerics_fingerprint`): hashes of a small fixed workload run through numpy's BLAS and
  torch's CPU kernels. Names do not say which kernels run (``OPENBLAS_CORETYPE``, ``ATEN_CPU_CAPABILITY``, the
  thread count and the CPU all choose), so whether two machines compute alike is measured, not named
  (:func:`environment_differences`);
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

from sac_minimal.data.fingerprint import dataset_fingerprint  # noqa: F401  (re-exported: provenance names it)

PACKAGE = Path(__file__).resolve().parents[1]
"""The package (core and lab): what the code fingerprint covers."""


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


def _workload(rows: int, columns: int, salt: int) -> np.ndarray:
    """``[rows, columns]`` float32 values in [-0.5, 0.5) from integer arithmetic alone (the same on every machine)."""
    index = np.arange(rows * columns, dtype=np.int64) + salt
    return ((index * 7919 % 997) / 997.0 - 0.5).astype(np.float32).reshape(rows, columns)


@functools.lru_cache(maxsize=8)
def _numerics(threads: int) -> tuple[str, str]:
    first, second = _workload(64, 96, 1), _workload(96, 80, 2)
    blas = hashlib.sha256()
    for product in (first @ second, first.astype(np.float64) @ second.astype(np.float64)):
        blas.update(np.ascontiguousarray(product).tobytes())
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # torch's multi-threaded reductions differ from run to run; threads are compared by name
    with torch.no_grad():
        left, right = torch.from_numpy(first), torch.from_numpy(second)
        signal = torch.from_numpy(_workload(2 * 96, 128, 3)).reshape(2, 96, 128)
        long = torch.from_numpy(_workload(1024, 1024, 4))
        outputs = (left @ right,
                   torch.nn.functional.conv1d(signal, right.T.reshape(80, 96, 1).repeat(1, 1, 3), padding=1),
                   torch.softmax(4 * left, dim=1), torch.exp(left).log1p(), torch.tanh(3 * left),
                   long.sum(dim=0), long.sum().reshape(1), long.mean(dim=1))
    torch.set_num_threads(before)
    kernels = hashlib.sha256()
    for output in outputs:
        kernels.update(output.contiguous().numpy().tobytes())
    return blas.hexdigest()[:16], kernels.hexdigest()[:16]


def numerics_fingerprint() -> dict:
    """``{"blas", "torch"}``: short hashes of a fixed workload through numpy's BLAS (a float32 and a float64 matrix
    product) and through torch's CPU kernels (matmul, conv1d, softmax, exp, tanh, long sums) on one torch thread
    (several threads make torch's reductions differ from run to run; the thread count is compared by name). Two environments with equal fingerprints computed this workload bit for bit alike; the BLAS kernel
    (``OPENBLAS_CORETYPE``), torch's kernel set (``ATEN_CPU_CAPABILITY``) and the thread count each change it."""
    blas, kernels = _numerics(torch.get_num_threads())
    return {"blas": blas, "torch": kernels}


def machine(device: str = "") -> dict:
    """The machine a result depends on: device, torch, CPU model, CPU instruction set, torch's threads, and the
    numerics fingerprint measured now (:func:`numerics_fingerprint`)."""
    return {
        "device": device or ("cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "numerics": numerics_fingerprint(),
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


def environment_differences(recorded: dict, current: dict, same_data: bool = True) -> list[str]:
    """What differs between the environment a run was made in (its provenance ``recorded``) and this one
    (:func:`machine`, measured at the thread count the re-run uses), in words; empty when every value of a re-run must
    be equal to the record's. Compared: the data (``same_data``: the dataset written here has the record's
    fingerprint), the device, torch's version, the thread count and the numerics fingerprint (BLAS kernel, torch
    kernels). A run recorded without a numerics fingerprint cannot be shown to share the kernels, so it is never
    held to bit equality."""
    differences = [] if same_data else ["data (the dataset here is not the bytes the run trained on)"]
    for key, label in (("device", "device"), ("torch", "torch version"), ("threads", "threads")):
        if recorded.get(key) != current.get(key):
            differences.append(f"{label} ({recorded.get(key)} in the record, {current.get(key)} here)")
    numerics = recorded.get("numerics")
    if not isinstance(numerics, dict):
        differences.append("numerics (the run records no numerics fingerprint)")
    else:
        differences += [label for key, label in (("blas", "BLAS kernel"), ("torch", "torch kernels"))
                        if numerics.get(key) != current["numerics"][key]]
    return differences


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
