"""Two-stream feature releases in CoLA's layout, converted to the one file per video this package reads.

Several public THUMOS14 I3D releases (CoLA's among them, the most used for weakly supervised localisation) keep
the two streams apart::

    <source>/features/<split>/rgb/<video>.npy     float32 [T, 1024]
    <source>/features/<split>/flow/<video>.npy    float32 [T, 1024]

:func:`convert_two_stream` writes ``<root>/i3d_features/<video>.npy`` = [rgb | flow] (appearance first,
``[T, 2048]``, the rows both streams have), ``<root>/feature_format.json`` with the snippet length the release
used (``frames_per_step``; CoLA's snippets are 16 frames, ActionFormer's rows 4 frames apart), and, when ``<root>``
has no annotation file, the shipped THUMOS14 annotations. ``python -m sac_minimal data check --root <root>`` then
checks every file, including that the row counts fit duration x fps / frames_per_step (a wrong snippet length shows
there).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from sac_minimal.data.thumos14 import ANNOTATION_FILE, FEATURE_FOLDER, FEATURE_FORMAT_FILE, FeatureFormat
from sac_minimal.files import save_npy_atomic, write_text_atomic

TWO_STREAM_LAYOUT = "features/<split>/{rgb,flow}/<video>.npy"


def two_stream_layout(source: str | Path) -> list[Path]:
    """The split folders of ``source`` that hold ``rgb/`` and ``flow/`` feature folders (empty: not this layout)."""
    features = Path(source) / "features"
    if not features.is_dir():
        return []
    return sorted(folder for folder in features.iterdir()
                  if (folder / "rgb").is_dir() and (folder / "flow").is_dir())


def convert_two_stream(source: str | Path, root: str | Path, frames_per_step: int = 16) -> dict:
    """Write ``root`` in this package's layout from a two-stream release at ``source`` (module docstring).

    Returns ``{"videos", "trimmed", "unpaired"}``: how many videos were written, which had streams of different
    lengths (trimmed to the shorter), and which had one stream only (skipped, named). A folder that is not in the
    two-stream layout, or ``root`` inside ``source``, is a ``ValueError``.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> for stream in ("rgb", "flow"):
    ...     (folder / "src/features/test" / stream).mkdir(parents=True)
    ...     np.save(folder / "src/features/test" / stream / "video_test_1.npy", np.ones((5, 1024), np.float32))
    >>> convert_two_stream(folder / "src", folder / "dst")["videos"]
    1
    >>> np.load(folder / "dst/i3d_features/video_test_1.npy").shape
    (5, 2048)
    """
    source, root = Path(source).resolve(), Path(root).resolve()
    splits = two_stream_layout(source)
    if not splits:
        raise ValueError(f"{source} is not in the two-stream layout {TWO_STREAM_LAYOUT}")
    if root == source or source in root.parents:
        raise ValueError(f"write the converted folder outside {source}, e.g. {source}_i3d")
    FeatureFormat(width=2048, frames_per_step=frames_per_step)  # validates frames_per_step
    written, trimmed, unpaired = 0, [], []
    for split in splits:
        rgb = {path.stem: path for path in (split / "rgb").glob("*.npy")}
        flow = {path.stem: path for path in (split / "flow").glob("*.npy")}
        unpaired += sorted(set(rgb) ^ set(flow))
        for video in sorted(set(rgb) & set(flow)):
            appearance, motion = np.load(rgb[video]), np.load(flow[video])
            if appearance.ndim != 2 or motion.ndim != 2 or appearance.shape[1] != motion.shape[1]:
                raise ValueError(f"{video}: rgb {appearance.shape} and flow {motion.shape} are not two [T, C] "
                                 "arrays of one width")
            rows = min(len(appearance), len(motion))
            if len(appearance) != len(motion):
                trimmed.append(video)
            save_npy_atomic(root / FEATURE_FOLDER / f"{video}.npy",
                            np.concatenate([appearance[:rows], motion[:rows]], axis=1).astype(np.float32))
            written += 1
    width = 2 * int(np.load(next(iter((splits[0] / "rgb").glob("*.npy"))), mmap_mode="r").shape[1])
    write_text_atomic(root / FEATURE_FORMAT_FILE, FeatureFormat(width=width, channel_order="rgb_flow",
                                                                frames_per_step=frames_per_step).to_json())
    if not (root / ANNOTATION_FILE).exists():
        from sac_minimal.data.locate import reference_annotation_file

        (root / ANNOTATION_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(reference_annotation_file(), root / ANNOTATION_FILE)
    return {"videos": written, "trimmed": trimmed, "unpaired": unpaired}
