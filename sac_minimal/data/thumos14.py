"""THUMOS14 on disk: annotation files, per-video feature files, and the official SAC window files.

Three layouts are read (book/recipe.md, Section 2; ``data/README.md`` for users):

ActionFormer (the default, and what :mod:`sac_minimal.data.synthetic` writes)::

    root/annotations/thumos14.json   {"database": {video: {"subset": "Validation" | "Test", "duration": s,
                                      "fps": f, "annotations": [{"label", "segment": [s, e], "label_id"}]}}}
    root/i3d_features/{video}.npy    float32 [T, 2048]; one step every 4 frames

Official SAC ground truth: ``{"database": {video: {"subset": "val" | "test", "fps", "duration",
"annotations": [{"segment", "label", "idx"}]}}}`` (the file its evaluation reads).

Official SAC windows: ``{val,test}/{video}_{begin_frame:05d}.npz`` holding ``feat_spa`` (RGB) and ``feat_tem``
(flow), each ``[1024, 128]``, plus ``begin_frame``, ``vid_name`` and, for training files, ``action`` ``[N, 3]`` and
``cate_label_array`` ``[N]``.

Channel order is never implied: a :class:`FeatureFormat` says which half of a feature row is appearance (RGB) and
which is motion (flow). ActionFormer's I3D files are RGB first; G-TAD's are flow first.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

THUMOS14_CLASSES: tuple[str, ...] = (
    "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving", "CricketBowling", "CricketShot",
    "Diving", "FrisbeeCatch", "GolfSwing", "HammerThrow", "HighJump", "JavelinThrow", "LongJump", "PoleVault",
    "Shotput", "SoccerPenalty", "TennisSwing", "ThrowDiscus", "VolleyballSpiking",
)
"""The 20 detection classes in alphabetical order; class id = position (the network's index is id + 1)."""

CLASS_ID = {name: index for index, name in enumerate(THUMOS14_CLASSES)}

IGNORED_LABELS = ("Ambiguous",)
"""THUMOS14 marks unclear stretches as ``Ambiguous``; they are neither actions nor background and are skipped."""

DEFAULT_EXCLUDED_VIDEOS: tuple[str, ...] = ("video_test_0000270", "video_test_0001292", "video_test_0001496")
"""Test videos commonly dropped: 0270 (segments run far past the video's end), 1292 (only Ambiguous
annotations), 1496 (the official SAC ground truth drops it too). Pass ``exclude=()`` to keep them all."""

ANNOTATION_FILE = Path("annotations") / "thumos14.json"
FEATURE_FOLDER = "i3d_features"
FEATURE_FORMAT_FILE = "feature_format.json"

SPLIT_OF_SUBSET = {"validation": "train", "val": "train", "test": "test"}


@dataclass(frozen=True)
class FeatureFormat:
    """How a per-video feature file is laid out.

    Attributes:
        width: columns per row (2048 for two-stream I3D).
        channel_order: ``rgb_flow`` (appearance columns first: ActionFormer, SAC) or ``flow_rgb`` (G-TAD).
        frames_per_step: video frames between consecutive feature rows (4 for THUMOS14 I3D).
    """

    width: int = 2048
    channel_order: str = "rgb_flow"
    frames_per_step: int = 4

    def __post_init__(self):
        if self.channel_order not in ("rgb_flow", "flow_rgb"):
            raise ValueError(f"channel_order must be 'rgb_flow' or 'flow_rgb', got {self.channel_order!r}")
        for name in ("width", "frames_per_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be a whole number, got {value!r} (write 2048, not 2048.0)")
        if self.width <= 0 or self.width % 2:
            raise ValueError(f"feature width must be a positive even number (two equal halves), got {self.width}")
        if self.frames_per_step <= 0:
            raise ValueError(f"frames_per_step must be positive, got {self.frames_per_step}")

    @property
    def channels_per_modality(self) -> int:
        return self.width // 2

    def split(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[T, width]`` -> (appearance ``[T, width/2]``, motion ``[T, width/2]``), whatever the stored order."""
        half = self.channels_per_modality
        first, second = features[:, :half], features[:, half:]
        return (first, second) if self.channel_order == "rgb_flow" else (second, first)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_root(cls, root: str | Path) -> FeatureFormat:
        """The format stated in ``root/feature_format.json``, else ActionFormer's I3D format (2048, RGB first)."""
        path = Path(root) / FEATURE_FORMAT_FILE
        if not path.exists():
            return cls()
        try:
            values = json.loads(path.read_text())
            if not isinstance(values, dict):
                raise ValueError(f"expected a JSON object, got {type(values).__name__}")
            return cls(**values)
        except RecursionError:
            raise ValueError(f"{path} is nested too deeply to be a feature format") from None
        except (TypeError, ValueError, OSError) as error:
            raise ValueError(f"{path} is not a valid feature format ({error}); expected keys "
                             f"{[field.name for field in dataclasses.fields(cls)]}") from error


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video.

    Attributes:
        video: the video id (also the feature file's stem).
        split: ``train`` (THUMOS14's validation videos) or ``test``.
        fps: frames per second, read per video (THUMOS14 mixes 30, 29.97, 25 and 24).
        duration: seconds.
        num_frames: round(duration x fps).
        segments: ``[N, 2]`` float64, start and end in seconds (clipped to the video unless read without
            ``clip_to_video``).
        labels: ``[N]`` int64 class ids into :data:`THUMOS14_CLASSES`.
    """

    video: str
    split: str
    fps: float
    duration: float
    num_frames: int
    segments: np.ndarray
    labels: np.ndarray

    @property
    def segments_frames(self) -> np.ndarray:
        """``[N, 2]`` segments in frames (seconds x fps)."""
        return self.segments * self.fps

    @property
    def class_names(self) -> list[str]:
        return [THUMOS14_CLASSES[label] for label in self.labels]


@dataclass(frozen=True)
class AnnotationSet:
    """The videos of an annotation file after exclusions, and what reading it changed.

    Attributes:
        videos: records in file order.
        layout: ``actionformer`` or ``sac_official``.
        excluded: videos dropped because they were on the exclusion list.
        clipped: video -> number of segments that run past the video's end (clipped, or dropped when wholly past
            it, if the file was read with ``clip_to_video``).
        ignored: number of ``Ambiguous`` annotations skipped.
        negative_starts: video -> number of segments that start before 0 s (clipped to 0, if the file was read
            with ``clip_to_video``).
    """

    videos: tuple[VideoRecord, ...]
    layout: str
    excluded: tuple[str, ...]
    clipped: dict
    ignored: int
    negative_starts: dict = dataclasses.field(default_factory=dict)

    def split(self, name: str) -> list[VideoRecord]:
        """The videos of ``train`` or ``test``; an error if there are none."""
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        videos = [video for video in self.videos if video.split == name]
        if not videos:
            raise ValueError(f"the {name} split is empty: no video has subset "
                             f"{'Validation/val' if name == 'train' else 'Test/test'} in the annotation file")
        return videos

    def __len__(self) -> int:
        return len(self.videos)


def detect_layout(database: dict) -> str:
    """``actionformer`` (subsets Validation/Test, ``label_id``) or ``sac_official`` (subsets val/test, ``idx``)."""
    subsets = {str(entry.get("subset", "")) for entry in database.values()}
    if subsets & {"Validation", "Test"}:
        return "actionformer"
    if subsets & {"val", "test"}:
        return "sac_official"
    raise ValueError(f"unrecognised annotation layout: subsets {sorted(subsets)}; expected ActionFormer's "
                     "'Validation'/'Test' or the official SAC 'val'/'test'")


def parse_annotations(document: dict, *, exclude: Iterable[str] = DEFAULT_EXCLUDED_VIDEOS,
                      source: str = "annotation file", clip_to_video: bool = True) -> AnnotationSet:
    """Turn an annotation JSON document (either layout) into :class:`VideoRecord` s.

    Segments that run past the video's end are counted in :attr:`AnnotationSet.clipped`. With ``clip_to_video``
    (for training targets: a window cannot hold what the features do not cover) they are clipped to the video, or
    dropped when they start after its end, and one warning names the videos concerned. Without it they are kept as
    annotated, which is how the THUMOS14 protocol (the official SAC evaluation, ActionFormer's) scores detections.
    Unknown labels raise.
    """
    if not isinstance(document, dict) or not isinstance(document.get("database"), dict):
        raise ValueError(f"{source}: expected a JSON object with a 'database' mapping video -> entry")
    database = document["database"]
    layout = detect_layout(database)
    exclude = set(exclude)
    videos, excluded, clipped, ignored, negative = [], [], {}, 0, {}
    for video, entry in database.items():
        check_video_id(video, source)
        if video in exclude:
            excluded.append(video)
            continue
        record, video_clipped, video_ignored, video_negative = _parse_video(video, entry, f"{source}: video {video}",
                                                                           clip_to_video)
        videos.append(record)
        ignored += video_ignored
        if video_clipped:
            clipped[video] = video_clipped
        if video_negative:
            negative[video] = video_negative
    if clipped and clip_to_video:
        warnings.warn(f"{source}: {sum(clipped.values())} segments ran past the video's end and were clipped or "
                      f"dropped, in {', '.join(sorted(clipped))}", stacklevel=2)
    if negative and clip_to_video:
        warnings.warn(f"{source}: {sum(negative.values())} segments started before 0 s and were clipped to 0, in "
                      f"{', '.join(sorted(negative))}", stacklevel=2)
    return AnnotationSet(videos=tuple(videos), layout=layout, excluded=tuple(sorted(excluded)), clipped=clipped,
                         negative_starts=negative,
                         ignored=ignored)


VIDEO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""A video id is a plain file name stem: it names ``i3d_features/<id>.npy`` inside the dataset and nothing else."""


def check_video_id(video, source: str) -> None:
    """A video id must be a plain name (letters, digits, ``_ . -``): an id such as ``/etc/x`` or ``../x`` would make
    the reader load a file outside the dataset folder, and outside its fingerprint."""
    if not isinstance(video, str) or not VIDEO_ID.fullmatch(video) or ".." in video:
        raise ValueError(f"{source}: the video id {video!r} is not a plain name (letters, digits, '_', '.', '-'); "
                         "a video's features are read from i3d_features/<id>.npy inside the dataset folder")


def _no_duplicate_keys(pairs: list) -> dict:
    """``json.loads`` hook: a key given twice in one object (two entries for one video) is an error, not 'the last
    one wins' (which could move a training video to the test split unnoticed)."""
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"the key(s) {', '.join(map(repr, duplicates[:5]))} appear more than once in one object "
                         "(e.g. a video listed twice); keep one entry each")
    return dict(pairs)


def _parse_video(video: str, entry, where: str, clip_to_video: bool) -> tuple[VideoRecord, int, int, int]:
    """One video's entry -> (its record, how many segments ran past its end, how many were Ambiguous, how many
    started before 0 s)."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object with subset, fps, duration and annotations, got "
                         f"{type(entry).__name__}")
    missing = [key for key in ("subset", "fps", "duration", "annotations") if key not in entry]
    if missing:
        raise ValueError(f"{where} lacks {missing}")
    split = SPLIT_OF_SUBSET.get(str(entry["subset"]).lower())
    if split is None:
        raise ValueError(f"{where} has subset {entry['subset']!r}; expected Validation/val or Test/test")
    fps, duration = _positive_number(entry["fps"], "fps", where), _positive_number(entry["duration"], "duration",
                                                                                 where)
    if not isinstance(entry["annotations"], list):
        raise ValueError(f"{where}: 'annotations' must be a list of {{label, segment}} objects, got "
                         f"{entry['annotations']!r:.40}")
    segments, labels, past_end, ignored, negative = [], [], 0, 0, 0
    for annotation in entry["annotations"]:
        label = annotation.get("label") if isinstance(annotation, dict) else None
        if label in IGNORED_LABELS:
            ignored += 1
            continue
        if label not in CLASS_ID:
            raise ValueError(f"{where} has the unknown label {label!r}; THUMOS14's classes are "
                             f"{', '.join(THUMOS14_CLASSES)}")
        start, end = _segment(annotation.get("segment"), where)
        if end > duration:
            past_end += 1
            if clip_to_video:
                if start >= duration:
                    continue
                end = duration
        negative += start < 0
        segments.append((max(start, 0.0) if clip_to_video else start, end))
        labels.append(CLASS_ID[label])
    record = VideoRecord(video=video, split=split, fps=fps, duration=duration, num_frames=round(duration * fps),
                         segments=np.asarray(segments, dtype=np.float64).reshape(-1, 2),
                         labels=np.asarray(labels, dtype=np.int64))
    return record, past_end, ignored, negative


def _positive_number(value, name: str, where: str) -> float:
    """A finite number > 0, or a ValueError saying which field of which video is wrong."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} has {name} {value!r}; it must be a number > 0") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{where} has {name} {value!r}; it must be a finite number > 0")
    return number


def _segment(value, where: str) -> tuple[float, float]:
    """``[start, end]`` in seconds with start < end, or a ValueError naming the video."""
    try:
        start, end = (float(number) for number in value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} has the segment {value!r}; a segment is [start, end] in seconds") from None
    if not (math.isfinite(start) and math.isfinite(end) and end > start):
        raise ValueError(f"{where} has the empty, reversed or non-finite segment [{start}, {end}]")
    return start, end


def load_annotations(path: str | Path, *, exclude: Iterable[str] = DEFAULT_EXCLUDED_VIDEOS,
                     clip_to_video: bool = True) -> AnnotationSet:
    """Read an annotation file in either layout (see :func:`parse_annotations`, which also explains
    ``clip_to_video``: True for training, False for scoring detections).

    ``path`` may be the JSON file or a dataset root holding ``annotations/thumos14.json``.
    """
    path = Path(path)
    if path.is_dir() or path.suffix != ".json":
        path = path / ANNOTATION_FILE
    if not path.exists():
        raise FileNotFoundError(f"annotation file not found: {path}. Expected <root>/{ANNOTATION_FILE.as_posix()} "
                                "(see data/README.md for the layout)")
    if not path.is_file():
        raise ValueError(f"the annotation path {path} is not a file; expected <root>/{ANNOTATION_FILE.as_posix()}")
    try:
        document = json.loads(path.read_text(), object_pairs_hook=_no_duplicate_keys)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be an annotation file; it is corrupt") from None
    return parse_annotations(document, exclude=exclude, source=str(path), clip_to_video=clip_to_video)


LENGTH_TOLERANCE = 0.05
"""Feature rows may differ from frames / frames_per_step by this fraction (plus 8 rows) before it is reported."""


def rows_fit_video(rows: int, expected_rows: float) -> bool:
    """Whether a feature file's row count fits its video: within :data:`LENGTH_TOLERANCE` (and 8 rows) of
    frames / frames_per_step."""
    return abs(rows - expected_rows) <= LENGTH_TOLERANCE * expected_rows + 8


def feature_path(root: str | Path, video: str) -> Path:
    return Path(root) / FEATURE_FOLDER / f"{video}.npy"


def check_feature_array(features: np.ndarray, feature_format: FeatureFormat, source: str) -> None:
    """Raise a ValueError naming ``source`` if ``features`` is not a finite float ``[T, width]`` array."""
    if features.ndim != 2:
        raise ValueError(f"{source}: features must be [T, {feature_format.width}], got shape {features.shape}")
    if features.shape[1] != feature_format.width:
        raise ValueError(
            f"{source}: feature width {features.shape[1]}, expected {feature_format.width} "
            f"({feature_format.channels_per_modality} appearance + {feature_format.channels_per_modality} motion). "
            "If RGB and flow are stored in separate files, concatenate them along the last axis; if your features "
            f"have another width, write it to <root>/{FEATURE_FORMAT_FILE}")
    if features.shape[0] == 0:
        raise ValueError(f"{source}: the feature file has no rows")
    if not np.issubdtype(features.dtype, np.floating):
        raise ValueError(f"{source}: features must be floating point, got {features.dtype}")
    non_finite = count_non_finite(features)
    if non_finite["nan"] or non_finite["inf"]:
        raise ValueError(f"{source}: {non_finite['nan']} NaN and {non_finite['inf']} Inf values; re-extract or "
                         "repair this video's features before training")


def count_non_finite(features: np.ndarray, rows_per_chunk: int = 4096) -> dict:
    """NaN and Inf counts, read in chunks so that a memory-mapped file is never loaded whole."""
    nan = inf = 0
    for start in range(0, features.shape[0], rows_per_chunk):
        chunk = np.asarray(features[start:start + rows_per_chunk])
        nan += int(np.isnan(chunk).sum())
        inf += int(np.isinf(chunk).sum())
    return {"nan": nan, "inf": inf}


def read_feature_file(path: Path, *, memory_map: bool = True) -> np.ndarray:
    """``np.load`` of one feature file, with a ``ValueError`` naming it when it is empty, truncated or not a
    ``.npy`` array (an interrupted copy leaves a 0-byte file)."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes), e.g. an interrupted copy; copy or extract it again")
    try:
        array = np.load(path, mmap_mode="r" if memory_map else None, allow_pickle=False)
    except (ValueError, OSError, EOFError, MemoryError) as error:
        # numpy reads a file without its header as pickled data and suggests allow_pickle, which would run code
        reason = "it does not start with numpy's .npy header" if "allow_pickle" in str(error) else str(error)
        raise ValueError(f"{path} is not a readable .npy array ({reason}); copy or extract it again") from None
    if not isinstance(array, np.ndarray):  # an .npz archive (several arrays) saved under a .npy name
        kind = type(array).__name__
        if hasattr(array, "close"):
            array.close()
        raise ValueError(f"{path} holds a {kind} (an .npz archive of several arrays), not one .npy array; save the "
                         "video's [T, width] features with np.save, or unpack the archive first")
    return array


def load_video_features(root: str | Path, video: str, feature_format: FeatureFormat, *,
                        memory_map: bool = True) -> np.ndarray:
    """The checked ``[T, width]`` float32 features of one video (memory-mapped unless ``memory_map=False``)."""
    path = feature_path(root, video)
    if not path.exists():
        raise FileNotFoundError(f"feature file for video {video} not found: {path}. Every annotated video needs "
                                f"<root>/{FEATURE_FOLDER}/<video>.npy; run `python -m sac_minimal data check --root "
                                f"{root}` to list all missing files")
    features = read_feature_file(path, memory_map=memory_map)
    check_feature_array(features, feature_format, str(path))
    return features if features.dtype == np.float32 else features.astype(np.float32)


@dataclass(frozen=True)
class SacWindow:
    """One window file of the official SAC layout.

    Attributes:
        appearance, motion: ``[1024, 128]`` (``feat_spa``, ``feat_tem``).
        begin_frame: the window's first frame in the video.
        video: ``vid_name``.
        actions: ``[N, 3]`` as stored (training files only, else ``None``).
        labels: ``[N]`` class labels as stored (training files only, else ``None``).
    """

    appearance: np.ndarray
    motion: np.ndarray
    begin_frame: int
    video: str
    actions: np.ndarray | None
    labels: np.ndarray | None


def read_sac_window(path: str | Path) -> SacWindow:
    """Read one official SAC ``.npz`` window, with clear errors for missing keys or mismatched shapes."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"window file not found: {path}")
    with np.load(path) as archive:
        missing = [key for key in ("feat_spa", "feat_tem", "begin_frame", "vid_name") if key not in archive.files]
        if missing:
            raise ValueError(f"{path}: not an official SAC window file, missing {missing} (has {archive.files})")
        appearance, motion = archive["feat_spa"], archive["feat_tem"]
        if appearance.shape != motion.shape or appearance.ndim != 2:
            raise ValueError(f"{path}: feat_spa {appearance.shape} and feat_tem {motion.shape} must both be [D, T]")
        for name, array in (("feat_spa", appearance), ("feat_tem", motion)):
            if not np.isfinite(array).all():
                raise ValueError(f"{path}: {name} holds NaN or Inf values")
        actions = archive["action"] if "action" in archive.files else None
        labels = archive["cate_label_array"] if "cate_label_array" in archive.files else None
        return SacWindow(appearance=appearance.astype(np.float32), motion=motion.astype(np.float32),
                         begin_frame=int(archive["begin_frame"]), video=str(archive["vid_name"]),
                         actions=actions, labels=labels)


def list_sac_windows(folder: str | Path) -> list[Path]:
    """The ``.npz`` window files of one split folder of the official SAC layout, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"window folder not found: {folder} (expected <root>/val or <root>/test)")
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise ValueError(f"{folder} holds no .npz window files")
    return files


def annotation_statistics(videos: Sequence[VideoRecord]) -> dict:
    """Counts and duration quantiles of a list of videos (book/recipe.md, Section 1, and notebook 06)."""
    if not videos:
        raise ValueError("no videos to summarise")
    per_video = np.array([len(video.labels) for video in videos])
    action = np.concatenate([video.segments[:, 1] - video.segments[:, 0] for video in videos])
    duration = np.array([video.duration for video in videos])
    classes_per_video = np.array([len(set(video.labels.tolist()) - {CLASS_ID["Diving"]})
                                  if CLASS_ID["CliffDiving"] in video.labels else len(set(video.labels.tolist()))
                                  for video in videos])
    return {
        "videos": len(videos),
        "instances": int(per_video.sum()),
        "instances per video (median, mean, max)": (float(np.median(per_video)), round(float(per_video.mean()), 1),
                                                    int(per_video.max())),
        "action seconds (min, p5, median, mean, p95, max)": tuple(
            round(float(value), 2) for value in (action.min(), np.percentile(action, 5), np.median(action),
                                                 action.mean(), np.percentile(action, 95), action.max())),
        "video seconds (min, median, mean, max)": tuple(
            round(float(value), 1) for value in (duration.min(), np.median(duration), duration.mean(),
                                                 duration.max())),
        "hours": round(float(duration.sum() / 3600), 1),
        "single-class videos (%)": round(100 * float((classes_per_video <= 1).mean()), 1),
        "fps values": dict(sorted({float(fps): int(count) for fps, count in
                                   zip(*np.unique([video.fps for video in videos], return_counts=True))}.items())),
    }


def class_counts(videos: Sequence[VideoRecord]) -> dict:
    """Instances per class name, in class-id order."""
    counts = np.bincount(np.concatenate([video.labels for video in videos]), minlength=len(THUMOS14_CLASSES))
    return {name: int(count) for name, count in zip(THUMOS14_CLASSES, counts)}


THUMOS14_REFERENCE_STATISTICS = {
    "train": {"videos": 200, "instances": 3003, "instances per video (median, mean, max)": (8.0, 15.0, 128),
              "action seconds (min, p5, median, mean, p95, max)": (0.2, 0.7, 2.9, 4.04, 9.7, 118.1),
              "video seconds (min, median, mean, max)": (8.9, 150.5, 209.0, 1409.4), "hours": 11.6,
              "single-class videos (%)": 91.5, "fps values": {24.0: 1, 25.0: 6, 29.97: 7, 30.0: 186}},
    "test": {"videos": 212, "instances": 3332, "instances per video (median, mean, max)": (9.0, 15.7, 218),
             "action seconds (min, p5, median, mean, p95, max)": (0.2, 0.8, 3.2, 4.46, 11.45, 86.6),
             "video seconds (min, median, mean, max)": (15.0, 161.7, 216.8, 1673.4), "hours": 12.8,
             "single-class videos (%)": 91.5, "fps values": {24.0: 1, 25.0: 5, 29.97: 11, 30.0: 195}},
}
""":func:`annotation_statistics` of THUMOS14's ActionFormer annotation file (no exclusions, segments clipped at the
video's end), for comparison tables when that file is not at hand. ``tests/test_data.py`` recomputes it from the
real file whenever the file is present."""
