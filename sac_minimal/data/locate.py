"""Where datasets live: the real THUMOS14 folder when present, else the synthetic surrogate in a cache.

The data folder is, in order: ``$SAC_MINIMAL_DATA``; the ``data/`` folder of the book's repository when the
working directory is inside it (found by its ``_toc.yml``); ``~/.cache/sac_minimal``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sac_minimal.data.synthetic import GENERATOR_VERSION, ensure_synthetic_thumos
from sac_minimal.data.thumos14 import ANNOTATION_FILE

REPOSITORY = Path(__file__).resolve().parents[2]
"""The book's repository when the package is used from a clone (an editable install, Colab)."""
REFERENCE_ANNOTATIONS = REPOSITORY / "data" / "reference" / "thumos14.json"
"""THUMOS14's real annotation file (ActionFormer's layout, no features), shipped with the book: data/README.md."""


def reference_annotation_file() -> Path:
    """The shipped THUMOS14 annotation file, with a clear error when the package is used outside the clone."""
    if not REFERENCE_ANNOTATIONS.exists():
        raise FileNotFoundError(f"{REFERENCE_ANNOTATIONS} not found: the real THUMOS14 annotation file ships with the "
                                "book's repository (data/reference/); use the package from a clone of it")
    return REFERENCE_ANNOTATIONS


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


def synthetic_root(size: str = "quick", seed: int = 0, version: int = GENERATOR_VERSION,
                   heterogeneity: float = 1.0, *, create: bool = True) -> Path:
    """The surrogate of this size, world (``seed``), generator version and heterogeneity, written on first use
    (seconds for quick) unless ``create`` is False (then the folder may not exist)."""
    root = data_dir() / "cache" / f"synthetic_{size}_world{seed}_h{float(heterogeneity):g}_v{version}"
    if create:
        try:
            ensure_synthetic_thumos(root, size=size, seed=seed, version=version, heterogeneity=heterogeneity)
        except FileExistsError as error:  # the package chose this folder, so the advice is not "choose another"
            found = str(error).split("; ")[0].split(". ")[0]  # what is there, without the advice for a chosen folder
            raise FileExistsError(f"the cached surrogate {root} is damaged or holds something else ({found}). It "
                                  "is only a cache: delete that folder and it is written again on next use") from None
    return root


def dataset_root(*, prefer_real: bool = True, size: str = "quick", seed: int = 0,
                 version: int = GENERATOR_VERSION, heterogeneity: float = 1.0,
                 create: bool = True) -> tuple[Path, str]:
    """``(root, kind)``: real THUMOS14 (kind ``thumos14``) when present and preferred, else the surrogate
    (kind ``synthetic``) of the given world (``seed``), generator version and heterogeneity."""
    real = real_thumos14_root() if prefer_real else None
    if real is not None:
        return real, "thumos14"
    return synthetic_root(size, seed, version, heterogeneity, create=create), "synthetic"
