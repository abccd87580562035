"""``python -m sac_minimal data check --root DIR``: validate a dataset folder before training on it.

Everything that would otherwise surface as a deep traceback halfway through an epoch is reported up front:
videos per split, instances, missing or unreadable feature files, feature widths, rows that do not match the
video's length, fps values and NaN/Inf counts.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sac_minimal.data.convert import TWO_STREAM_LAYOUT, two_stream_layout
from sac_minimal.data.thumos14 import (
    DEFAULT_EXCLUDED_VIDEOS,
    FEATURE_FOLDER,
    FeatureFormat,
    count_non_finite,
    feature_path,
    load_annotations,
    read_feature_file,
    rows_fit_video,
)


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found; ``problems`` is empty for a usable dataset."""

    root: Path
    feature_format: FeatureFormat
    layout: str = ""
    excluded: tuple = ()
    videos: dict = field(default_factory=dict)
    instances: dict = field(default_factory=dict)
    widths: Counter = field(default_factory=Counter)
    fps: Counter = field(default_factory=Counter)
    clipped: dict = field(default_factory=dict)
    negative_starts: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)
    wrong_width: list = field(default_factory=list)
    wrong_dtype: list = field(default_factory=list)
    length_mismatch: list = field(default_factory=list)
    non_finite: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self, root_label: str | None = None) -> str:
        """The report as text; ``root_label`` replaces the folder's full path in the first line (pages printed by
        the book show no path of the machine that built them)."""
        lines = [f"dataset {root_label or self.root}", f"  feature format: {self.feature_format}"]
        if self.layout:
            lines += [f"  annotation layout: {self.layout}",
                      f"  excluded videos: {', '.join(self.excluded) if self.excluded else 'none'}"]
            for split in ("train", "test"):
                lines.append(f"  {split}: {self.videos.get(split, 0)} videos, {self.instances.get(split, 0)} instances")
            lines.append(f"  fps values: {dict(sorted(self.fps.items()))}")
            lines.append(f"  feature widths: {dict(self.widths)}")
            if self.clipped:
                lines.append(f"  segments clipped at the video's end: {self.clipped}")
            if self.negative_starts:
                lines.append(f"  segments starting before 0 s (clipped to 0 for training): {self.negative_starts}")
        for title, entries in (("missing feature files", self.missing), ("unreadable feature files", self.unreadable),
                               ("wrong feature width", self.wrong_width), ("not floating point", self.wrong_dtype),
                               ("rows do not match the video length", self.length_mismatch)):
            if entries:
                shown = ", ".join(entries[:10]) + (f" and {len(entries) - 10} more" if len(entries) > 10 else "")
                lines.append(f"  {title} ({len(entries)}): {shown}")
        if self.non_finite:
            lines.append(f"  NaN/Inf values: {self.non_finite}")
        lines.append("  OK" if self.ok else "  PROBLEMS:\n" + "\n".join(f"    - {problem}" for problem in self.problems))
        return "\n".join(lines)


def check_dataset(root: str | Path, *, feature_format: FeatureFormat | None = None, width: int | None = None,
                  channel_order: str | None = None,
                  exclude: Iterable[str] = DEFAULT_EXCLUDED_VIDEOS) -> DatasetReport:
    """Read every annotation and feature file under ``root`` and report what is wrong. It never raises on bad data:
    every problem (unreadable annotation or format file, missing, empty, truncated or non-float feature files,
    wrong widths, NaN/Inf, lengths that do not fit the video) becomes a line of the report.

    ``width`` and ``channel_order`` override the folder's ``feature_format.json``."""
    try:
        return _check_dataset(Path(root), feature_format, width, channel_order, exclude)
    except Exception as error:  # the check reports; it never raises, whatever the folder holds
        report = DatasetReport(root=Path(root), feature_format=FeatureFormat())
        report.problems.append(f"the folder could not be read ({type(error).__name__}: {str(error)[:160]})")
        return report


def _check_dataset(root: Path, feature_format, width, channel_order, exclude) -> DatasetReport:
    if not (root / FEATURE_FOLDER).is_dir() and two_stream_layout(root):
        report = DatasetReport(root=root, feature_format=FeatureFormat())
        report.problems.append(
            f"this folder holds two-stream features in CoLA's layout ({TWO_STREAM_LAYOUT}), not one "
            f"{FEATURE_FOLDER}/<video>.npy per video; convert it once: python -m sac_minimal data convert-two-stream "
            f"--source {root} --root {root}_i3d")
        return report
    try:
        feature_format = feature_format or FeatureFormat.from_root(root)
        overrides = {key: value for key, value in (("width", width), ("channel_order", channel_order))
                     if value is not None}
        feature_format = dataclasses.replace(feature_format, **overrides)
    except ValueError as error:
        report = DatasetReport(root=root, feature_format=FeatureFormat())
        report.problems.append(str(error))
        return report
    report = DatasetReport(root=root, feature_format=feature_format)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            annotations = load_annotations(root, exclude=exclude)
    except (FileNotFoundError, ValueError, OSError) as error:
        report.problems.append(str(error))
        return report
    except RecursionError:
        report.problems.append("the annotation file is nested too deeply to be an annotation file")
        return report
    report.layout, report.excluded, report.clipped = annotations.layout, annotations.excluded, annotations.clipped
    report.negative_starts = annotations.negative_starts
    for video in annotations.videos:
        report.videos[video.split] = report.videos.get(video.split, 0) + 1
        report.instances[video.split] = report.instances.get(video.split, 0) + len(video.labels)
        report.fps[video.fps] += 1
        _check_feature_file(report, root, video, feature_format)
    _check_truth_file(report, root, [video.video for video in annotations.videos])
    _summarise_problems(report, feature_format)
    return report


def _check_truth_file(report: DatasetReport, root: Path, videos: list) -> None:
    """A surrogate's ``synthetic.json`` must hold a usable truth for every annotated video (the controls read it)."""
    from sac_minimal.data.synthetic import (
        METADATA_FILE,
        read_synthetic_metadata,
        surrogate_label,
        surrogate_problems,
        truth_problems,
    )

    if not (root / METADATA_FILE).exists():
        if surrogate_label(root) is not None:
            report.problems.append(f"{METADATA_FILE} is missing: this folder holds a surrogate written by this "
                                   "package, whose generator, world and truth cannot be checked without it")
        return
    try:
        metadata = read_synthetic_metadata(root)
        problems = truth_problems(metadata, videos)
        report.problems += [f"{METADATA_FILE}: {problem}" for problem in surrogate_problems(root, metadata)]
    except (ValueError, OSError, AttributeError) as error:
        problems = [str(error)]
    report.problems += [f"{METADATA_FILE}: {problem}" for problem in problems[:5]]
    if len(problems) > 5:
        report.problems.append(f"{METADATA_FILE}: and {len(problems) - 5} more videos with the same kind of problem")


def _check_feature_file(report: DatasetReport, root: Path, video, feature_format: FeatureFormat) -> None:
    path = feature_path(root, video.video)
    if not path.exists():
        report.missing.append(video.video)
        return
    try:
        features = read_feature_file(path)
    except (ValueError, OSError):
        report.unreadable.append(video.video)
        return
    if features.ndim != 2:
        report.unreadable.append(video.video)
        return
    report.widths[int(features.shape[1])] += 1
    if features.shape[1] != feature_format.width:
        report.wrong_width.append(f"{video.video} ({features.shape[1]})")
    if not np.issubdtype(features.dtype, np.floating):
        report.wrong_dtype.append(f"{video.video} ({features.dtype})")
        return
    expected_rows = video.num_frames / feature_format.frames_per_step
    if not rows_fit_video(features.shape[0], expected_rows):
        report.length_mismatch.append(f"{video.video} ({features.shape[0]} rows, ~{expected_rows:.0f} expected)")
    counts = count_non_finite(features)
    if counts["nan"] or counts["inf"]:
        report.non_finite[video.video] = counts


def _summarise_problems(report: DatasetReport, feature_format: FeatureFormat) -> None:
    for split in ("train", "test"):
        if not report.videos.get(split):
            report.problems.append(f"the {split} split has no videos")
        elif not report.instances.get(split):
            report.problems.append(f"the {split} split has no instance of THUMOS14's 20 classes (only Ambiguous or "
                                   "unknown labels): a model could not be trained or scored on it")
    if report.missing:
        report.problems.append(f"{len(report.missing)} feature files are missing")
    if report.unreadable:
        report.problems.append(f"{len(report.unreadable)} feature files are empty, truncated or not 2-D .npy arrays")
    if report.wrong_width:
        report.problems.append(f"{len(report.wrong_width)} feature files are not {feature_format.width} wide; "
                               "write the right width to feature_format.json or re-extract")
    if report.wrong_dtype:
        report.problems.append(f"{len(report.wrong_dtype)} feature files are not floating point; save them as "
                               "float32")
    if report.non_finite:
        report.problems.append(f"{len(report.non_finite)} feature files hold NaN or Inf values")
    if report.length_mismatch:
        report.problems.append(f"{len(report.length_mismatch)} feature files do not match duration x fps / "
                               f"{feature_format.frames_per_step}; check fps and frames_per_step")
