"""A dataset folder's fingerprint: the SHA-256 of what a model trained on it reads.

Every run records the fingerprint of its dataset, and the generator stores the fingerprint of what it wrote in
``synthetic.json``, so that a cached surrogate whose files changed after it was written is noticed.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

FULL_HASH_LIMIT = 1 << 30
"""Datasets up to this many bytes of features are hashed in full (1 GiB)."""
EDGE_BYTES = 1 << 20
"""Beyond that, the first and last MiB of each feature file are hashed (with every file's name and size)."""


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
    """SHA-256 of a dataset folder's annotation file, feature format and feature files (every byte of them when they
    are small, as the surrogate's are; names, sizes and the first and last MiB of each file beyond 1 GiB); cached per
    folder while every one of those files keeps its size and modification time."""
    root = Path(root).resolve()
    paths = [root / "annotations" / "thumos14.json", root / "feature_format.json",
             *sorted((root / "i3d_features").glob("*.npy"))]
    stamp = tuple((str(path), path.stat().st_size, path.stat().st_mtime_ns) if path.exists() else (str(path),)
                  for path in paths)
    return _dataset_fingerprint(str(root), stamp)
