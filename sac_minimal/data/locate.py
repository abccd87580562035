"""Where datasets live: the real THUMOS14 folder when present, else the synthetic surrogate in a cache.

The data folder is, in order: ``$SAC_MINIMAL_DATA``; the ``data/`` folder of the book's repository when the
working directory is inside it (found by its ``_toc.yml``); ``~/.cache/sac_minimal``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sac_minimal.data.synthetic import ensure_synthetic_thumos
from sac_minimal.data.thumos14 import ANNOTATION_FILE


def data_dir() -> Path:
    if os.environ.get("SAC_MINIMAL_DATA"):
        return Path(os.environ["SAC_MINIMAL_DATA"]).expanduser()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "_toc.yml").exists() and (folder / "sac_minimal").is_dir():
            return folder / "data"
    return Path.home() / ".cache" / "sac_minimal"


def real_thumos14_root() -> Path | None:
    """``<data>/thumos14`` if it holds an annotation file, else None."""
    root = data_dir() / "thumos14"
    return root if (root / ANNOTATION_FILE).exists() else None


def synthetic_root(size: str = "quick", seed: int = 0) -> Path:
    """The surrogate of this size and seed, written on first use (seconds for quick)."""
    root = data_dir() / "cache" / f"synthetic_{size}_seed{seed}"
    ensure_synthetic_thumos(root, size=size, seed=seed)
    return root


def dataset_root(*, prefer_real: bool = True, size: str = "quick", seed: int = 0) -> tuple[Path, str]:
    """``(root, kind)``: real THUMOS14 (kind ``thumos14``) when present and preferred, else the surrogate
    (kind ``synthetic``)."""
    real = real_thumos14_root() if prefer_real else None
    if real is not None:
        return real, "thumos14"
    return synthetic_root(size, seed), "synthetic"
