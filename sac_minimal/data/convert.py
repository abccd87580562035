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

from sac_minimal.data.thumos14 import (
    ANNOTATION_FILE,
    FEATURE_FOLDER,
    FEATURE_FORMAT_FILE,
    FeatureFormat,
    read_feature_file,
)
from sac_minimal.files import save_npy_atomic, write_text_atomic

TWO_STREAM_LAYOUT = "features/<split>/{rgb,flow}/<video>.npy"


def _check_new_dataset_folder(root: Path) -> None:
    """``root`` may be missing, empty, or hold only an annotation file: anything else is a dataset (or something) that
    converting would overwrite or mix with, and is refused."""
    if not root.exists():
        return
    if not root.is_dir() or root.is_symlink():
        raise ValueError(f"{root} is not a plain folder; choose a new folder to write the converted dataset to")
    kept = {ANNOTATION_FILE.parts[0]}
    present = sorted(path.name for path in root.iterdir() if path.name not in kept)
    if present:
        raise ValueError(f"{root} already holds {', '.join(present)}: converting never overwrites a dataset or "
                         "mixes with one. Choose a new (missing or empty) folder; an annotation file of your own "
                         f"may be placed there first ({ANNOTATION_FILE})")


def _read_stream(path: Path) -> np.ndarray:
    """One stream's features ``[T, C]`` as float32, or a ``ValueError`` that names the file and what is wrong."""
    values = read_feature_file(path)
    if values.dtype.kind not in "fiu":
        raise ValueError(f"{path} holds {values.dtype} values; features are real numbers (float32)")
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{path} has shape {values.shape}; a stream's features are a [T, C] array")
    return np.asarray(values, dtype=np.float32)


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
    two-stream layout, ``root`` inside ``source``, a ``root`` that already holds features, a feature format or a
    surrogate (converting never overwrites a dataset: only a missing or empty folder, or one holding just an
    annotation file, is written), and a file that is not a real-valued ``[T, C]`` array are ``ValueError`` s that
    name the folder or file.

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
    _check_new_dataset_folder(root)
    pairs, unpaired = [], []
    for split in splits:
        rgb = {path.stem: path for path in (split / "rgb").glob("*.npy")}
        flow = {path.stem: path for path in (split / "flow").glob("*.npy")}
        unpaired += sorted(set(rgb) ^ set(flow))
        pairs += [(video, rgb[video], flow[video]) for video in sorted(set(rgb) & set(flow))]
    if not pairs:
        raise ValueError(f"no video of {source} has both an rgb/ and a flow/ file ({TWO_STREAM_LAYOUT}); nothing to "
                         "convert")
    written, trimmed, width = 0, [], None
    for video, rgb_path, flow_path in pairs:
        appearance, motion = _read_stream(rgb_path), _read_stream(flow_path)
        if appearance.shape[1] != motion.shape[1]:
            raise ValueError(f"{video}: rgb {appearance.shape} ({rgb_path}) and flow {motion.shape} ({flow_path}) "
                             "are not two [T, C] arrays of one width")
        rows = min(len(appearance), len(motion))
        if len(appearance) != len(motion):
            trimmed.append(video)
        save_npy_atomic(root / FEATURE_FOLDER / f"{video}.npy",
                        np.concatenate([appearance[:rows], motion[:rows]], axis=1).astype(np.float32))
        written, width = written + 1, width or 2 * appearance.shape[1]
    write_text_atomic(root / FEATURE_FORMAT_FILE, FeatureFormat(width=width, channel_order="rgb_flow",
                                                                frames_per_step=frames_per_step).to_json())
    if not (root / ANNOTATION_FILE).exists():
        from sac_minimal.data.locate import reference_annotation_file

        (root / ANNOTATION_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(reference_annotation_file(), root / ANNOTATION_FILE)
    return {"videos": written, "trimmed": trimmed, "unpaired": unpaired}
