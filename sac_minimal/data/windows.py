"""Fixed-length windows over videos, their training targets, and a Dataset that serves them in batches.

The recipe is the official SAC / A2Net one (book/recipe.md, Section 3), written in frames:

* a window covers ``steps x frames_per_step`` frames (128 x 4 = 512);
* starts are ``i * stride`` for ``i < int((frames + stride - window) / stride)``, plus a tail window at
  ``frames - window`` when the video is longer than a window (train stride 128 frames, test stride 256);
* a video shorter than a window gets one window at frame 0, edge-padded by repeating its last feature;
* a ground-truth segment belongs to a window when more than ``min_coverage`` (90 %) of its own length lies inside;
  a training window is kept only if at least one segment belongs to it (all test windows are kept);
* targets are the belonging segments clipped to the window and divided by the window length, so they lie in [0, 1].

The 90 % rule decides both which windows are kept and which segments become targets; on the real annotation file
that yields about 4,770 training windows holding about 9,450 targets (at most 18 per window).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sac_minimal.data.thumos14 import (
    DEFAULT_EXCLUDED_VIDEOS,
    AnnotationSet,
    FeatureFormat,
    VideoRecord,
    feature_path,
    list_sac_windows,
    load_annotations,
    load_video_features,
    read_sac_window,
    rows_fit_video,
)

OFFICIAL_RECIPE_COUNTS = {"train windows": 4770, "train targets": 9450, "test windows": 5150}
"""What the official window scripts cut from THUMOS14's annotations (rounded; the count depends slightly on the
excluded videos): the numbers this recipe is checked against (tests, notebook 06)."""


@dataclass(frozen=True)
class WindowSpec:
    """How videos are cut into windows.

    Attributes:
        steps: feature steps per window (128).
        frames_per_step: frames between feature steps (4).
        train_stride_steps, test_stride_steps: window strides in steps (32 and 64, i.e. 128 and 256 frames).
        min_coverage: a segment belongs to a window when more than this fraction of it is inside (0.9).
        max_segments: targets are padded to this many per window (30, as the official code).
        short_videos: ``pad`` (official: one edge-padded window) or ``error`` for videos shorter than a window.
    """

    steps: int = 128
    frames_per_step: int = 4
    train_stride_steps: int = 32
    test_stride_steps: int = 64
    min_coverage: float = 0.9
    max_segments: int = 30
    short_videos: str = "pad"

    def __post_init__(self):
        if min(self.steps, self.frames_per_step, self.train_stride_steps, self.test_stride_steps,
               self.max_segments) <= 0:
            raise ValueError(f"window sizes and strides must be positive: {self}")
        if not 0.0 <= self.min_coverage < 1.0:
            raise ValueError(f"min_coverage must be in [0, 1), got {self.min_coverage}")
        if self.short_videos not in ("pad", "error"):
            raise ValueError(f"short_videos must be 'pad' or 'error', got {self.short_videos!r}")

    @property
    def frames(self) -> int:
        """Window length in frames (512)."""
        return self.steps * self.frames_per_step

    def stride_frames(self, split: str) -> int:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        stride = self.train_stride_steps if split == "train" else self.test_stride_steps
        return stride * self.frames_per_step


def window_starts(num_frames: int, stride: int, window: int) -> np.ndarray:
    """Start frames of the windows over a video of ``num_frames`` frames (regular starts plus the tail window)."""
    if num_frames <= window:
        return np.zeros(1, dtype=np.int64)
    regular = np.arange(int((num_frames + stride - window) / stride), dtype=np.int64) * stride
    return np.append(regular, num_frames - window)


def segment_coverage(starts: np.ndarray, segments_frames: np.ndarray, window: int) -> np.ndarray:
    """``[W, N]`` fraction of each segment's own length that lies inside each window ``[start, start + window)``."""
    begin = starts[:, None].astype(np.float64)
    inside = (np.minimum(segments_frames[None, :, 1], begin + window)
              - np.maximum(segments_frames[None, :, 0], begin)).clip(min=0.0)
    return inside / (segments_frames[None, :, 1] - segments_frames[None, :, 0])


@dataclass(frozen=True)
class WindowTable:
    """All windows of a split as flat arrays (one row per window).

    Attributes:
        video_index: ``[W]`` index into :attr:`videos`.
        begin_frame: ``[W]`` first frame of the window in its video.
        segments: ``[W, max_segments, 2]`` float32 targets in window units [0, 1], zero-padded.
        labels: ``[W, max_segments]`` int64 class ids, -1 where padded.
        num_segments: ``[W]`` number of real targets.
        videos: the records the windows were cut from.
    """

    video_index: np.ndarray
    begin_frame: np.ndarray
    segments: np.ndarray
    labels: np.ndarray
    num_segments: np.ndarray
    videos: tuple[VideoRecord, ...]

    def __len__(self) -> int:
        return len(self.begin_frame)


def cut_windows(videos: Sequence[VideoRecord], split: str, spec: WindowSpec = WindowSpec()) -> WindowTable:
    """Cut ``videos`` into windows by the recipe of the module docstring; one NumPy pass per video."""
    if not videos:
        raise ValueError(f"no videos to cut for the {split} split")
    window, stride = spec.frames, spec.stride_frames(split)
    columns = {"video_index": [], "begin_frame": [], "segments": [], "labels": [], "num_segments": []}
    for index, video in enumerate(videos):
        if video.num_frames < window and spec.short_videos == "error":
            raise ValueError(f"video {video.video} has {video.num_frames} frames, shorter than one window of "
                             f"{window}; use WindowSpec(short_videos='pad') to edge-pad it, or exclude it")
        starts = window_starts(video.num_frames, stride, window)
        frames = video.segments_frames
        belongs = segment_coverage(starts, frames, window) > spec.min_coverage
        if split == "train":
            keep = belongs.any(axis=1)
            starts, belongs = starts[keep], belongs[keep]
        count = belongs.sum(axis=1)
        if count.size and count.max() > spec.max_segments:
            raise ValueError(f"video {video.video}: a window holds {count.max()} segments, more than "
                             f"max_segments={spec.max_segments}; raise WindowSpec.max_segments")
        clipped = ((np.clip(frames[None], starts[:, None, None], starts[:, None, None] + window)
                    - starts[:, None, None]) / window)
        # Stable sort puts each window's belonging segments first, in annotation order.
        order = np.argsort(~belongs, axis=1, kind="stable")[:, :spec.max_segments]
        gathered = np.take_along_axis(clipped, order[..., None], axis=1)
        valid = np.arange(order.shape[1])[None] < count[:, None]
        padded_segments = np.zeros((len(starts), spec.max_segments, 2), dtype=np.float32)
        padded_labels = np.full((len(starts), spec.max_segments), -1, dtype=np.int64)
        padded_segments[:, :order.shape[1]] = np.where(valid[..., None], gathered, 0.0)
        padded_labels[:, :order.shape[1]] = np.where(valid, video.labels[order] if video.labels.size else -1, -1)
        columns["video_index"].append(np.full(len(starts), index, dtype=np.int64))
        columns["begin_frame"].append(starts)
        columns["segments"].append(padded_segments)
        columns["labels"].append(padded_labels)
        columns["num_segments"].append(count.astype(np.int64))
    table = {name: np.concatenate(parts) for name, parts in columns.items()}
    if len(table["begin_frame"]) == 0:
        raise ValueError(f"the {split} split yields no windows: no segment has more than {spec.min_coverage:.0%} "
                         "of its length inside any window")
    return WindowTable(videos=tuple(videos), **table)


class WindowDataset(torch.utils.data.Dataset):
    """Windows of one split with their features, ready for SAC + SSAD.

    An item is a dict: ``appearance`` ``[Da, steps]`` and ``motion`` ``[Dm, steps]`` float32 tensors, ``segments``
    ``[max_segments, 2]`` (window units), ``labels`` ``[max_segments]`` (class ids, -1 = padding),
    ``num_segments``, and the metadata ``video``, ``begin_frame``, ``fps``. :meth:`batch` returns the same keys
    for many windows at once with one gather over a feature bank, which is what training loops should use.

    Features are checked once when the dataset is built (width, NaN/Inf). With ``in_memory=True`` all videos of the
    split are concatenated into one ``[sum T, width]`` array; otherwise each video stays memory-mapped.
    """

    def __init__(self, root: str | Path, split: str, *, spec: WindowSpec = WindowSpec(),
                 feature_format: FeatureFormat | None = None, annotations: AnnotationSet | None = None,
                 exclude: Sequence[str] = DEFAULT_EXCLUDED_VIDEOS, in_memory: bool = True,
                 accept_length_mismatch: bool = False):
        self.root = Path(root)
        self.split = split
        self.spec = spec
        self.feature_format = feature_format or FeatureFormat.from_root(self.root)
        if self.feature_format.frames_per_step != spec.frames_per_step:
            raise ValueError(f"the features have one step every {self.feature_format.frames_per_step} frames but "
                             f"the windows assume {spec.frames_per_step}; make them agree")
        self.annotations = annotations or load_annotations(self.root, exclude=exclude)
        self.table = cut_windows(self.annotations.split(split), split, spec)
        arrays = [load_video_features(self.root, video.video, self.feature_format, memory_map=True)
                  for video in self.table.videos]
        lengths = np.array([len(array) for array in arrays])
        if not accept_length_mismatch:
            self._check_lengths(lengths)
        begin_step = self.table.begin_frame // spec.frames_per_step
        past_end = begin_step >= lengths[self.table.video_index]
        if past_end.any():
            first = self.table.videos[self.table.video_index[past_end.argmax()]]
            raise ValueError(f"video {first.video}: {first.num_frames} frames at {first.fps} fps need about "
                             f"{first.num_frames // spec.frames_per_step} feature steps but the file has "
                             f"{lengths[self.table.video_index[past_end.argmax()]]}; check fps, duration and "
                             "frames_per_step")
        # Edge padding: steps past a video's end repeat its last feature.
        local_rows = np.minimum(begin_step[:, None] + np.arange(spec.steps)[None],
                                lengths[self.table.video_index][:, None] - 1)
        self.in_memory = in_memory
        if in_memory:
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            self._bank = np.concatenate([np.asarray(array) for array in arrays]) if arrays else None
            self._rows = offsets[self.table.video_index][:, None] + local_rows
        else:
            self._arrays = arrays
            self._rows = local_rows
        self.feature_steps = lengths

    def __len__(self) -> int:
        return len(self.table)

    def _check_lengths(self, lengths: np.ndarray) -> None:
        """A feature file must cover its video: rows about frames / frames_per_step (``data check`` reports the
        same); far fewer rows would be edge-padded into windows of repeated features without a word."""
        for video, rows in zip(self.table.videos, lengths):
            expected = video.num_frames / self.spec.frames_per_step
            if not rows_fit_video(int(rows), expected):
                raise ValueError(
                    f"{feature_path(self.root, video.video)} has {rows} rows but video {video.video} "
                    f"({video.duration} s at {video.fps} fps) needs about {expected:.0f}; check fps, duration and "
                    "frames_per_step (python -m sac_minimal data check), or accept it explicitly with "
                    "accept_length_mismatch=True (CLI: --accept-length-mismatch)")

    def _check_gates(self, gates: Sequence[np.ndarray], caller: str) -> None:
        """Gates ``[T_i, 2]`` for every video of an in-memory dataset, or a ``ValueError`` naming what is wrong."""
        if not self.in_memory:
            raise ValueError(f"{caller} needs a WindowDataset built with in_memory=True")
        if len(gates) != len(self.feature_steps):
            raise ValueError(f"{len(gates)} gate arrays for {len(self.feature_steps)} videos")
        for video, (gate, steps) in enumerate(zip(gates, self.feature_steps)):
            if gate.shape != (steps, 2):
                raise ValueError(f"video {self.table.videos[video].video}: gates of shape {gate.shape}, expected "
                                 f"({steps}, 2)")

    def apply_step_gates(self, gates: Sequence[np.ndarray], around_mean: bool = False) -> None:
        """Weight every feature step by a gate per modality, in place: ``gates[i]`` is ``[T_i, 2]`` (appearance,
        motion) for video ``i`` of :attr:`table.videos`, one row per feature step of its file. By default the step
        is multiplied by its gate (the reference gate); with ``around_mean`` it is moved towards its video's mean
        feature of that modality, ``x' = mu + g (x - mu)`` (the privileged control: a gate of 0 leaves the video's
        mean, no evidence, in place of the step; :func:`sac_minimal.lab.train.load_windows`)."""
        self._check_gates(gates, "apply_step_gates")
        bank_gates = np.concatenate(gates).astype(np.float32)
        appearance, motion = self.feature_format.split(self._bank)  # views into the bank
        bounds = np.concatenate([[0], np.cumsum(self.feature_steps)])
        for part, gate in ((appearance, bank_gates[:, :1]), (motion, bank_gates[:, 1:])):
            if not around_mean:
                part *= gate
                continue
            for begin, end in zip(bounds[:-1], bounds[1:]):
                mean = part[begin:end].mean(axis=0, keepdims=True)
                moved = mean + gate[begin:end] * (part[begin:end] - mean)
                part[begin:end] = np.where(gate[begin:end] == 1, part[begin:end], moved)  # a weight of 1: as it was

    def apply_window_gates(self, gates: Sequence[np.ndarray]) -> np.ndarray:
        """Weight every *window* by one gate per modality, around its video's mean: ``gates[i]`` is ``[T_i, 2]``
        per-step weights of video ``i``; a window's gate on a modality is their mean over the window's steps, and
        each of its steps becomes ``x' = mu + g_w (x - mu)`` (mu: the video's mean feature of that modality). It is
        the granularity of SAC's modality attention, one share per modality per window (the privileged control per
        window, :func:`sac_minimal.lab.train.load_windows`). Overlapping windows get their own gates, so a step can be
        weighted differently in two windows. Returns the ``[N, 2]`` window gates (appearance, motion)."""
        self._check_gates(gates, "apply_window_gates")
        bank_gates = np.concatenate(gates).astype(np.float64)
        window_gates = bank_gates[self._rows].mean(axis=1)  # [N, 2]: edge padding repeats the last step's gate
        bounds = np.concatenate([[0], np.cumsum(self.feature_steps)])
        video_means = np.stack([self._bank[begin:end].mean(axis=0) for begin, end in zip(bounds[:-1], bounds[1:])])
        columns = np.zeros(self._bank.shape[1], dtype=np.int64)
        appearance, motion = self.feature_format.split(np.arange(self._bank.shape[1])[None])
        columns[motion[0]] = 1
        self._window_gates = window_gates[:, columns].astype(np.float32)  # [N, width]
        self._window_means = video_means[self.table.video_index].astype(np.float32)  # [N, width]: its video's mean
        return window_gates

    def _gather(self, indices: np.ndarray) -> np.ndarray:
        """``[B, steps, width]`` features of the windows ``indices`` (moved towards their video's mean by the
        window gates of :meth:`apply_window_gates`, where set)."""
        if self.in_memory:
            features = self._bank[self._rows[indices]]
            if getattr(self, "_window_gates", None) is None:
                return features
            return gate_windows(features, self._window_gates[indices], self._window_means[indices])
        return np.stack([np.asarray(self._arrays[self.table.video_index[index]][self._rows[index]])
                         for index in indices])

    def batch(self, indices: Sequence[int] | np.ndarray) -> dict:
        """The windows ``indices`` stacked: appearance ``[B, Da, steps]``, motion ``[B, Dm, steps]``, targets."""
        indices = np.asarray(indices, dtype=np.int64)
        features = torch.from_numpy(self._gather(indices)).transpose(1, 2)
        half = self.feature_format.channels_per_modality
        first, second = features[:, :half], features[:, half:]
        appearance, motion = (first, second) if self.feature_format.channel_order == "rgb_flow" else (second, first)
        table = self.table
        return {
            "appearance": appearance.contiguous(),
            "motion": motion.contiguous(),
            "segments": torch.from_numpy(table.segments[indices]),
            "labels": torch.from_numpy(table.labels[indices]),
            "num_segments": torch.from_numpy(table.num_segments[indices]),
            "video": [table.videos[index].video for index in table.video_index[indices]],
            "begin_frame": torch.from_numpy(table.begin_frame[indices]),
            "fps": torch.tensor([table.videos[index].fps for index in table.video_index[indices]],
                                dtype=torch.float64),
        }

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        item = self.batch([index % len(self)])
        return {key: value[0] for key, value in item.items()}

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[dict]:
        """Iterate over the split in batches (shuffled with ``generator`` when ``shuffle``)."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        order = (torch.randperm(len(self), generator=generator).numpy() if shuffle
                 else np.arange(len(self)))
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            yield self.batch(order[start:start + batch_size])


class SacWindowFolder(torch.utils.data.Dataset):
    """The official SAC ``.npz`` windows of one split folder, served with :class:`WindowDataset`'s keys.

    The official files store ``action`` ``[N, 3]``; its first two columns are read as start and end in window units
    (checked to lie in [0, 1]) and ``cate_label_array`` as network indices (class id + 1). ``fps`` is not stored in
    these files: pass the annotation set to attach it, otherwise it is NaN.
    """

    def __init__(self, folder: str | Path, *, max_segments: int = 30, annotations: AnnotationSet | None = None):
        self.files = list_sac_windows(folder)
        self.max_segments = max_segments
        self.fps = {video.video: video.fps for video in annotations.videos} if annotations else {}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        window = read_sac_window(self.files[index])
        segments = np.zeros((self.max_segments, 2), dtype=np.float32)
        labels = np.full(self.max_segments, -1, dtype=np.int64)
        count = 0
        if window.actions is not None:
            actions = np.asarray(window.actions, dtype=np.float32).reshape(-1, 3)
            count = len(actions)
            if count > self.max_segments:
                raise ValueError(f"{self.files[index]}: {count} segments, more than max_segments={self.max_segments}")
            if count and (actions[:, :2].min() < -0.01 or actions[:, :2].max() > 1.01):
                raise ValueError(f"{self.files[index]}: action start/end outside [0, 1]; expected window units")
            segments[:count] = actions[:, :2]
            labels[:count] = np.asarray(window.labels, dtype=np.int64).reshape(-1)[:count] - 1
        return {
            "appearance": torch.from_numpy(window.appearance),
            "motion": torch.from_numpy(window.motion),
            "segments": torch.from_numpy(segments),
            "labels": torch.from_numpy(labels),
            "num_segments": torch.tensor(count),
            "video": window.video,
            "begin_frame": torch.tensor(window.begin_frame),
            "fps": torch.tensor(self.fps.get(window.video, float("nan")), dtype=torch.float64),
        }


def gate_windows(features, gates, means):
    """``x' = mu + g (x - mu)`` for windows ``features [B, T, width]`` with one gate and one mean per window and
    channel (``[B, width]``; NumPy arrays or tensors); a gate of 1 leaves a feature bit for bit as it was."""
    gate, mean = gates[:, None], means[:, None]
    where = torch.where if isinstance(features, torch.Tensor) else np.where
    return where(gate == 1, features, mean + gate * (features - mean))


class ResidentWindows:
    """A :class:`WindowDataset`'s features and targets as tensors on one device (e.g. GPU-resident), so a training
    step's batch is a single index operation there, with no host-to-device copy per step."""

    def __init__(self, dataset: WindowDataset, device: torch.device | str):
        if not dataset.in_memory:
            raise ValueError("ResidentWindows needs a WindowDataset built with in_memory=True")
        self._place(torch.from_numpy(dataset._bank), torch.from_numpy(dataset._rows),
                    torch.from_numpy(dataset.table.segments), torch.from_numpy(dataset.table.labels),
                    dataset.feature_format, device)
        if getattr(dataset, "_window_gates", None) is not None:  # the privileged control per window
            self.window_gates = torch.from_numpy(dataset._window_gates).to(self.device)
            self.window_means = torch.from_numpy(dataset._window_means).to(self.device)

    @classmethod
    def from_tensors(cls, bank: torch.Tensor, rows: torch.Tensor, segments: torch.Tensor, labels: torch.Tensor,
                     feature_format: FeatureFormat, device: torch.device | str) -> ResidentWindows:
        """From raw tensors: ``bank [N, width]`` feature rows, ``rows [W, T]`` each window's row indices,
        ``segments [W, S, 2]``, ``labels [W, S]`` (benchmarks, tests)."""
        resident = cls.__new__(cls)
        resident._place(bank, rows, segments, labels, feature_format, device)
        return resident

    def _place(self, bank, rows, segments, labels, feature_format, device) -> None:
        self.device = torch.device(device)
        self.feature_format = feature_format
        self.bank, self.rows = bank.to(self.device), rows.to(self.device)
        self.segments, self.labels = segments.to(self.device), labels.to(self.device)
        self.window_gates = self.window_means = None

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(appearance ``[B, Da, T]``, motion ``[B, Dm, T]``, segments ``[B, S, 2]``, labels ``[B, S]``)."""
        indices = indices.to(self.device)
        features = self.bank[self.rows[indices]]
        if self.window_gates is not None:
            features = gate_windows(features, self.window_gates[indices], self.window_means[indices])
        features = features.transpose(1, 2)
        half = self.feature_format.channels_per_modality
        first, second = features[:, :half], features[:, half:]
        appearance, motion = (first, second) if self.feature_format.channel_order == "rgb_flow" else (second, first)
        return appearance, motion, self.segments[indices], self.labels[indices]
