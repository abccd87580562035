"""A deterministic synthetic surrogate of THUMOS14 I3D features, written in the ActionFormer layout.

It is a controlled experiment, not THUMOS14: numbers measured on it are labelled synthetic everywhere. It exists
so that the book, the tests and a first Colab run have data with the property SAC is about: which modality to
trust depends on the class *and* on the video.

Generative model (notebook 06 draws each part)
-----------------------------------------------
Videos. Durations are log-normal (full: median 150 s, like THUMOS14; quick: median 40 s), fps is 30 for most
videos and 29.97, 25 or 24 for a few, one feature step covers 4 frames and step ``i`` is centred on frame
``4 i + 8``. Each video has one main class (a second one in 8 % of videos), drawn with THUMOS14's test-set class
frequencies; about one instance per 14 s, log-normal action durations (median 2.9 s times a per-class factor),
placed without overlap. Every CliffDiving instance is also annotated as Diving, as in THUMOS14.

Features. Each modality (appearance = "RGB" columns, motion = "flow" columns) at step t is::

    x(t) = scene_v + sum_i amplitude(c_i) * reliability_v * envelope_i(t) * prototype(c_i)
           + distractors_v(t) + noise(t)

1. Class preference (:data:`MODALITY_PREFERENCE`): for *appearance* classes (distinct scenes and objects:
   Billiards, GolfSwing, ...) the appearance prototypes are distinct while the motion prototypes of the group
   share most of one direction (a generic swing), so motion alone confuses them; for *motion* classes (the
   track-and-field group: HighJump, LongJump, PoleVault, ...) it is the other way round (one stadium look, distinct
   movements); *both* classes are distinct in both modalities at medium amplitude.
2. Per-video reliability: each video is ``clean`` (both modalities reliable), ``far_camera`` (motion amplitude cut
   to 15-30 %) or ``look_alike`` (appearance amplitude cut to 30-50 % and the scene holds a look-alike class), so
   no fixed per-class weighting is right for every video.
3. Action steps carry the class signal on top of the scene, so their L2 norm exceeds the background's on average
   (what action-aware pooling, Eq. (1), relies on).
4. Boundary bleed: for motion classes the appearance envelope extends 0.5-1 action durations before and after the
   true segment (the athlete is on the runway before the jump: the paper's Fig. 1a), the motion envelope does not.
5. Structured distractors: the unreliable modality carries action-shaped bursts in the background, a camera-pan
   direction in motion for ``far_camera`` videos and the look-alike class's appearance prototype for ``look_alike``
   videos, not white noise.
6. Deterministic: every video draws from its own generator seeded by (seed, split, index), so the files are
   byte-identical for a seed, whatever the order they are written in.

Everything the generator decided (class preferences, each video's condition) is written to
``root/synthetic.json`` next to the dataset, so that tests and notebooks can measure these properties.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sac_minimal.data.thumos14 import (
    ANNOTATION_FILE,
    CLASS_ID,
    FEATURE_FOLDER,
    FEATURE_FORMAT_FILE,
    THUMOS14_CLASSES,
    FeatureFormat,
)

GENERATOR_VERSION = 1
METADATA_FILE = "synthetic.json"

MODALITY_PREFERENCE: dict[str, str] = {
    **dict.fromkeys(("BaseballPitch", "Billiards", "CricketBowling", "GolfSwing", "SoccerPenalty", "TennisSwing",
                     "VolleyballSpiking"), "appearance"),
    **dict.fromkeys(("CleanAndJerk", "HammerThrow", "HighJump", "JavelinThrow", "LongJump", "PoleVault", "Shotput",
                     "ThrowDiscus"), "motion"),
    **dict.fromkeys(("BasketballDunk", "CliffDiving", "CricketShot", "Diving", "FrisbeeCatch"), "both"),
}
"""Which modality identifies each class in the surrogate (a design choice of this surrogate, not a THUMOS14 fact)."""

THUMOS14_TEST_CLASS_COUNTS = {
    "BaseballPitch": 41, "BasketballDunk": 488, "Billiards": 106, "CleanAndJerk": 98, "CliffDiving": 217,
    "CricketBowling": 138, "CricketShot": 170, "Diving": 388, "FrisbeeCatch": 48, "GolfSwing": 36,
    "HammerThrow": 242, "HighJump": 135, "JavelinThrow": 169, "LongJump": 142, "PoleVault": 399, "Shotput": 144,
    "SoccerPenalty": 48, "TennisSwing": 141, "ThrowDiscus": 88, "VolleyballSpiking": 120,
}
"""Instances per class in THUMOS14's test annotations: the surrogate's class frequencies."""

CONDITIONS = ("clean", "far_camera", "look_alike")
CONDITION_PROBABILITIES = (0.5, 0.25, 0.25)
FPS_VALUES = (30.0, 29.97, 25.0, 24.0)
FPS_PROBABILITIES = (0.925, 0.044, 0.026, 0.005)


@dataclass(frozen=True)
class SyntheticSize:
    """Scale of a surrogate dataset.

    Attributes:
        train_videos, test_videos: number of videos per split.
        channels_per_modality: feature width of each modality (the file holds twice this).
        median_duration, duration_sigma, min_duration, max_duration: log-normal video durations in seconds.
        max_action_duration: action durations are clipped here (seconds).
    """

    train_videos: int
    test_videos: int
    channels_per_modality: int
    median_duration: float
    duration_sigma: float
    min_duration: float
    max_duration: float
    max_action_duration: float


SIZES = {
    "quick": SyntheticSize(train_videos=60, test_videos=60, channels_per_modality=64, median_duration=40.0,
                           duration_sigma=0.5, min_duration=12.0, max_duration=150.0, max_action_duration=15.0),
    "full": SyntheticSize(train_videos=200, test_videos=210, channels_per_modality=1024, median_duration=150.0,
                          duration_sigma=0.8, min_duration=9.0, max_duration=1400.0, max_action_duration=60.0),
}

FRAMES_PER_STEP = 4
SECONDS_PER_INSTANCE = 14.0
MEDIAN_ACTION_SECONDS = 2.9
SECOND_CLASS_PROBABILITY = 0.08
NOISE_SCALE = 0.6
SCENE_SCALE = 1.0
SHARED_DIRECTION_WEIGHT = 0.9
AMPLITUDE = {"preferred": 1.0, "other": 0.7, "both": 0.8}
DISTRACTOR_AMPLITUDE = 0.9
DISTRACTORS_PER_MINUTE = 4.0


@dataclass(frozen=True)
class SurrogateWorld:
    """What is shared by all videos of a seed: class prototypes, look-alike partners and duration factors.

    Attributes:
        appearance_prototypes, motion_prototypes: ``[20, D]`` unit vectors.
        camera_pan: ``[D]`` unit vector of the motion distractor.
        look_alike: ``[20]`` class whose appearance a look-alike scene shows (same preference group).
        duration_factor: ``[20]`` multiplies the median action duration.
        class_probabilities: ``[20]`` main-class distribution.
    """

    appearance_prototypes: np.ndarray
    motion_prototypes: np.ndarray
    camera_pan: np.ndarray
    look_alike: np.ndarray
    duration_factor: np.ndarray
    class_probabilities: np.ndarray


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def make_world(seed: int, channels: int) -> SurrogateWorld:
    """Class prototypes with the preference structure of :data:`MODALITY_PREFERENCE` (property 1)."""
    rng = np.random.default_rng([seed, 0])
    preference = np.array([MODALITY_PREFERENCE[name] for name in THUMOS14_CLASSES])
    prototypes = {}
    for modality, confusable_group in (("appearance", "motion"), ("motion", "appearance")):
        distinct = _unit(rng.standard_normal((len(THUMOS14_CLASSES), channels)))
        shared = _unit(rng.standard_normal(channels))
        # In the modality that does not identify them, the group's classes share one direction.
        blended = _unit(SHARED_DIRECTION_WEIGHT * shared + (1 - SHARED_DIRECTION_WEIGHT) * distinct)
        prototypes[modality] = np.where((preference == confusable_group)[:, None], blended, distinct)
    look_alike = np.empty(len(THUMOS14_CLASSES), dtype=np.int64)
    for index, group in enumerate(preference):
        partners = np.flatnonzero((preference == group) & (np.arange(len(preference)) != index))
        look_alike[index] = rng.choice(partners)
    counts = np.array([THUMOS14_TEST_CLASS_COUNTS[name] for name in THUMOS14_CLASSES], dtype=np.float64)
    return SurrogateWorld(
        appearance_prototypes=prototypes["appearance"].astype(np.float32),
        motion_prototypes=prototypes["motion"].astype(np.float32),
        camera_pan=_unit(rng.standard_normal(channels)).astype(np.float32),
        look_alike=look_alike,
        duration_factor=np.exp(0.3 * rng.standard_normal(len(THUMOS14_CLASSES))),
        class_probabilities=counts / counts.sum(),
    )


def _amplitudes(label: int) -> tuple[float, float]:
    """(appearance, motion) amplitude of a class's signal."""
    preference = MODALITY_PREFERENCE[THUMOS14_CLASSES[label]]
    if preference == "both":
        return AMPLITUDE["both"], AMPLITUDE["both"]
    if preference == "appearance":
        return AMPLITUDE["preferred"], AMPLITUDE["other"]
    return AMPLITUDE["other"], AMPLITUDE["preferred"]


def _place_intervals(rng: np.random.Generator, durations: np.ndarray, total: float) -> np.ndarray:
    """Non-overlapping ``[n, 2]`` intervals of the given durations in ``[0, total]``, in random order of gaps."""
    gaps = rng.dirichlet(np.ones(len(durations) + 1)) * (total - durations.sum())
    starts = np.cumsum(gaps[:-1]) + np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    return np.stack([starts, starts + durations], axis=1)


def _envelope(step_seconds: np.ndarray, intervals: np.ndarray, ramp: float = 0.25) -> np.ndarray:
    """``[T, n]`` trapezoids: 1 inside each interval, linear ramps of ``ramp`` seconds at both ends."""
    rise = (step_seconds[:, None] - intervals[None, :, 0]) / ramp + 0.5
    fall = (intervals[None, :, 1] - step_seconds[:, None]) / ramp + 0.5
    return np.clip(np.minimum(rise, fall), 0.0, 1.0).astype(np.float32)


def synthesize_video(world: SurrogateWorld, size: SyntheticSize, seed: int, split: str, index: int) -> dict:
    """One video: its annotation entry, its condition, and features ``[T, 2 D]`` (appearance columns first)."""
    rng = np.random.default_rng([seed, 1 if split == "train" else 2, index])
    channels = size.channels_per_modality
    duration = float(np.clip(size.median_duration * np.exp(size.duration_sigma * rng.standard_normal()),
                             size.min_duration, size.max_duration))
    fps = float(rng.choice(FPS_VALUES, p=FPS_PROBABILITIES))
    num_frames = round(duration * fps)
    steps = num_frames // FRAMES_PER_STEP
    step_seconds = (FRAMES_PER_STEP * np.arange(steps) + 2 * FRAMES_PER_STEP) / fps

    main_class = int(rng.choice(len(THUMOS14_CLASSES), p=world.class_probabilities))
    count = max(1, round(duration / SECONDS_PER_INSTANCE * float(np.exp(0.6 * rng.standard_normal()))))
    labels = np.full(count, main_class)
    if rng.random() < SECOND_CLASS_PROBABILITY:
        second_class = int(rng.choice(len(THUMOS14_CLASSES), p=world.class_probabilities))
        labels[rng.random(count) < 0.3] = second_class
    action_seconds = np.clip(MEDIAN_ACTION_SECONDS * world.duration_factor[labels]
                             * np.exp(0.75 * rng.standard_normal(count)), 0.3, size.max_action_duration)
    keep = np.cumsum(action_seconds) <= 0.6 * duration  # actions fill at most 60 % of the video
    keep[0] = action_seconds[0] <= 0.9 * duration
    labels, action_seconds = labels[keep], action_seconds[keep]
    segments = _place_intervals(rng, action_seconds, duration)

    condition = str(rng.choice(CONDITIONS, p=CONDITION_PROBABILITIES))
    reliability = {"appearance": rng.uniform(0.8, 1.2), "motion": rng.uniform(0.8, 1.2)}
    if condition == "far_camera":
        reliability["motion"] = rng.uniform(0.15, 0.3)
    elif condition == "look_alike":
        reliability["appearance"] = rng.uniform(0.3, 0.5)

    amplitudes = np.array([_amplitudes(label) for label in labels], dtype=np.float32).reshape(-1, 2)
    motion_class = np.array([MODALITY_PREFERENCE[THUMOS14_CLASSES[label]] == "motion" for label in labels])
    bleed = np.where(motion_class, rng.uniform(0.5, 1.0, len(labels)), 0.0)[:, None] * action_seconds[:, None]
    appearance_envelope = _envelope(step_seconds, segments + np.concatenate([-bleed, bleed], axis=1))
    motion_envelope = _envelope(step_seconds, segments)

    appearance = (appearance_envelope * (amplitudes[:, 0] * reliability["appearance"])) @ \
        world.appearance_prototypes[labels]
    motion = (motion_envelope * (amplitudes[:, 1] * reliability["motion"])) @ world.motion_prototypes[labels]

    if condition != "clean":
        distractor_count = rng.poisson(DISTRACTORS_PER_MINUTE * duration / 60.0)
        distractor_seconds = rng.uniform(1.0, 4.0, distractor_count)
        distractor_starts = rng.uniform(0.0, duration, distractor_count)
        distractors = np.stack([distractor_starts, distractor_starts + distractor_seconds], axis=1)
        overlaps_action = ((distractors[:, None, 0] < segments[None, :, 1] + 1.0)
                           & (distractors[:, None, 1] > segments[None, :, 0] - 1.0)).any(axis=1)
        distractor_envelope = _envelope(step_seconds, distractors[~overlaps_action]).sum(axis=1, keepdims=True)
        if condition == "far_camera":
            motion += DISTRACTOR_AMPLITUDE * distractor_envelope * world.camera_pan
        else:
            appearance += DISTRACTOR_AMPLITUDE * distractor_envelope * world.appearance_prototypes[
                world.look_alike[main_class]]

    scene = SCENE_SCALE * _unit(rng.standard_normal(channels)).astype(np.float32)
    camera = 0.3 * SCENE_SCALE * _unit(rng.standard_normal(channels)).astype(np.float32)
    noise = rng.standard_normal((steps, 2 * channels), dtype=np.float32) * np.float32(NOISE_SCALE / np.sqrt(channels))
    features = noise
    features[:, :channels] += appearance + scene
    features[:, channels:] += motion + camera

    annotations = [{"label": THUMOS14_CLASSES[label], "segment": [round(start, 2), round(end, 2)],
                    "segment(frames)": [round(start * fps, 1), round(end * fps, 1)], "label_id": int(label)}
                   for (start, end), label in zip(segments.tolist(), labels.tolist())]
    diving = CLASS_ID["Diving"]
    annotations += [{**entry, "label": "Diving", "label_id": diving}
                    for entry in annotations if entry["label"] == "CliffDiving"]
    annotations.sort(key=lambda entry: (entry["segment"][0], entry["label_id"]))
    return {
        "entry": {"subset": "Validation" if split == "train" else "Test", "duration": round(duration, 2), "fps": fps,
                  "annotations": annotations},
        "condition": condition,
        "features": features,
    }


def video_name(split: str, index: int) -> str:
    """Surrogate video ids never collide with THUMOS14's (``video_validation_...``, ``video_test_...``)."""
    return f"synthetic_{'validation' if split == 'train' else 'test'}_{index + 1:07d}"


def write_synthetic_thumos(root: str | Path, size: str = "quick", seed: int = 0) -> dict:
    """Write a surrogate dataset under ``root`` in the ActionFormer layout and return its metadata.

    Files: ``annotations/thumos14.json``, ``i3d_features/{video}.npy`` (float32 ``[T, 2 D]``, appearance first),
    ``feature_format.json`` (so the reader knows the width) and ``synthetic.json`` (generator, seed, each video's
    condition, the class preferences, generation time).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    started = time.perf_counter()
    scale = SIZES[size]
    root = Path(root)
    (root / FEATURE_FOLDER).mkdir(parents=True, exist_ok=True)
    (root / ANNOTATION_FILE).parent.mkdir(parents=True, exist_ok=True)
    world = make_world(seed, scale.channels_per_modality)
    database, conditions = {}, {}
    for split, count in (("train", scale.train_videos), ("test", scale.test_videos)):
        for index in range(count):
            video = synthesize_video(world, scale, seed, split, index)
            name = video_name(split, index)
            np.save(root / FEATURE_FOLDER / f"{name}.npy", video["features"])
            database[name] = video["entry"]
            conditions[name] = video["condition"]
    version = f"synthetic-thumos14-surrogate v{GENERATOR_VERSION} size={size} seed={seed}"
    (root / ANNOTATION_FILE).write_text(json.dumps({"version": version, "database": database}))
    feature_format = FeatureFormat(width=2 * scale.channels_per_modality, channel_order="rgb_flow",
                                   frames_per_step=FRAMES_PER_STEP)
    (root / FEATURE_FORMAT_FILE).write_text(feature_format.to_json())
    metadata = {
        "generator_version": GENERATOR_VERSION, "size": size, "seed": seed, "scale": dataclasses.asdict(scale),
        "modality_preference": MODALITY_PREFERENCE, "conditions": conditions,
        "look_alike": {THUMOS14_CLASSES[index]: THUMOS14_CLASSES[partner]
                       for index, partner in enumerate(world.look_alike)},
        "seconds_to_generate": round(time.perf_counter() - started, 2),
    }
    # Written last: its presence marks a complete dataset.
    (root / METADATA_FILE).write_text(json.dumps(metadata, indent=1))
    return metadata


def read_synthetic_metadata(root: str | Path) -> dict:
    path = Path(root) / METADATA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {root} is not a complete synthetic dataset")
    return json.loads(path.read_text())


def ensure_synthetic_thumos(root: str | Path, size: str = "quick", seed: int = 0) -> dict:
    """Return the metadata of the surrogate at ``root``, writing it first unless the same size and seed exist."""
    try:
        metadata = read_synthetic_metadata(root)
        if (metadata["generator_version"], metadata["size"], metadata["seed"]) == (GENERATOR_VERSION, size, seed):
            return metadata
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        pass
    return write_synthetic_thumos(root, size=size, seed=seed)


def _run_lengths(flags: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def measure_surrogate_properties(root: str | Path, split: str = "train") -> dict:
    """Measure properties 3-5 of the module docstring on a written surrogate (properties 1-2 need a probe:
    :func:`sac_minimal.data.probe.modality_probe`).

    Returns:
        ``norm_ratio``: {modality: mean L2 norm of action steps / of background steps} (property 3).
        ``bleed``: {modality: for motion classes, the class-prototype projection 0.3-1 s outside the segments,
        background-subtracted, as a fraction of the projection inside} (property 4: ~1 appearance, ~0 motion).
        ``distractors``: {condition: (fraction of background steps whose projection on the distractor direction
        exceeds half its amplitude, mean run length in steps)} for the unreliable modality (property 5).
    """
    from sac_minimal.data.thumos14 import load_annotations, load_video_features

    metadata = read_synthetic_metadata(root)
    annotations = load_annotations(root, exclude=())
    feature_format = FeatureFormat.from_root(root)
    world = make_world(metadata["seed"], feature_format.channels_per_modality)
    sums = {key: [] for key in ("action_a", "background_a", "action_m", "background_m")}
    bleed = {"appearance": ([], [], []), "motion": ([], [], [])}
    distractor_steps = {condition: ([], []) for condition in CONDITIONS}
    for video in annotations.split(split):
        features = np.asarray(load_video_features(root, video.video, feature_format))
        appearance, motion = feature_format.split(features)
        step_seconds = (FRAMES_PER_STEP * np.arange(len(features)) + 2 * FRAMES_PER_STEP) / video.fps
        starts, ends = video.segments[:, 0], video.segments[:, 1]
        inside = ((step_seconds[:, None] >= starts) & (step_seconds[:, None] <= ends)).any(axis=1)
        near = ((step_seconds[:, None] >= starts - 1.5 * (ends - starts) - 1.0)
                & (step_seconds[:, None] <= ends + 1.5 * (ends - starts) + 1.0)).any(axis=1)
        for suffix, stream in (("a", appearance), ("m", motion)):
            norms = np.linalg.norm(stream, axis=1)
            sums[f"action_{suffix}"].append(norms[inside])
            sums[f"background_{suffix}"].append(norms[~near])
        for label in np.unique(video.labels):
            if MODALITY_PREFERENCE[THUMOS14_CLASSES[label]] != "motion":
                continue
            own = video.labels == label
            s, e = starts[own], ends[own]
            inside_own = ((step_seconds[:, None] >= s) & (step_seconds[:, None] <= e)).any(axis=1)
            band = ((((step_seconds[:, None] >= s - 1.0) & (step_seconds[:, None] <= s - 0.3))
                     | ((step_seconds[:, None] >= e + 0.3) & (step_seconds[:, None] <= e + 1.0))).any(axis=1)
                    & ~inside)
            for modality, stream, prototypes in (("appearance", appearance, world.appearance_prototypes),
                                                 ("motion", motion, world.motion_prototypes)):
                projection = stream @ prototypes[label]
                bleed[modality][0].append(projection[inside_own])
                bleed[modality][1].append(projection[band])
                bleed[modality][2].append(projection[~near])
        condition = metadata["conditions"][video.video]
        main_class = np.bincount(video.labels, minlength=len(THUMOS14_CLASSES)).argmax() if len(video.labels) else 0
        if condition == "look_alike" or (condition == "clean" and len(video.labels)):
            projection = appearance[~near] @ world.appearance_prototypes[world.look_alike[main_class]]
        else:
            projection = motion[~near] @ world.camera_pan
        exceeds = projection > DISTRACTOR_AMPLITUDE / 2
        distractor_steps[condition][0].append(exceeds)
        distractor_steps[condition][1].extend(_run_lengths(exceeds).tolist())
    norm_ratio = {name: float(np.concatenate(sums[f"action_{suffix}"]).mean()
                              / np.concatenate(sums[f"background_{suffix}"]).mean())
                  for name, suffix in (("appearance", "a"), ("motion", "m"))}
    bleed_fraction = {}
    for modality, (inside_values, band_values, background_values) in bleed.items():
        background = np.concatenate(background_values).mean()
        bleed_fraction[modality] = float((np.concatenate(band_values).mean() - background)
                                         / (np.concatenate(inside_values).mean() - background))
    distractors = {condition: (float(np.concatenate(flags).mean()) if flags else float("nan"),
                               float(np.mean(runs)) if runs else 0.0)
                   for condition, (flags, runs) in distractor_steps.items()}
    return {"norm_ratio": norm_ratio, "bleed": bleed_fraction, "distractors": distractors}
