"""Data: THUMOS14's real on-disk formats, the windows SAC and SSAD train on, and a synthetic surrogate.

Modules:
    thumos14   annotation files (ActionFormer and official SAC layouts), per-video features, SAC window files.
    windows    the official window recipe, targets, and :class:`WindowDataset`.
    synthetic  the deterministic surrogate written in the ActionFormer layout (the book's default data).
    portable   sums and exponentials that give the same bits on every machine (what the surrogate uses).
    fingerprint  a dataset folder's SHA-256 (what a run records of its data).
    probe      linear probes on ground-truth segments: which modality identifies which class.
    check      ``python -m sac_minimal data check``.
    convert    two-stream releases (CoLA's layout) -> one feature file per video.
    locate     where the real dataset or the surrogate lives.
"""

from sac_minimal.data.thumos14 import (
    DEFAULT_EXCLUDED_VIDEOS,
    THUMOS14_CLASSES,
    AnnotationSet,
    FeatureFormat,
    VideoRecord,
    load_annotations,
    load_video_features,
)
from sac_minimal.data.windows import WindowDataset, WindowSpec, cut_windows

__all__ = [
    "DEFAULT_EXCLUDED_VIDEOS",
    "THUMOS14_CLASSES",
    "AnnotationSet",
    "FeatureFormat",
    "VideoRecord",
    "WindowDataset",
    "WindowSpec",
    "cut_windows",
    "load_annotations",
    "load_video_features",
]
