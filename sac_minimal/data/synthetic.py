"""A deterministic synthetic surrogate of THUMOS14 I3D features, written in the ActionFormer layout.

It is a controlled experiment, not THUMOS14: numbers measured on it are labelled synthetic everywhere. It exists
so that the book, the tests and a first Colab run have data with the property SAC is about: which modality to
trust depends on the class *and* on the video.

Generative model (notebook 06 draws each part)
-----------------------------------------------
Videos. Durations are log-normal (full: median 150 s, like THUMOS14; quick: median 40 s; tiny, for dry runs of
scripts: 25 s and 2 x 16 channels), fps is 30 for most
videos and 29.97, 25 or 24 for a few, one feature step covers 4 frames and step ``i`` is centred on frame
``4 i + 8``. Each video has one main class (a second one in 8 % of videos), drawn with THUMOS14's test-set class
frequencies; about one instance per 14 s, log-normal action durations (median 2.9 s times a per-class factor),
placed without overlap. Every CliffDiving instance is also annotated as Diving, as in THUMOS14.

Features. Each modality (appearance = "RGB" columns, motion = "flow" columns) at step t is::

    x(t) = scene_v + sum_i amplitude(c_i) * envelope_i(t) * prototype(c_i) + distractors_v(t) + noise_v(t)

1. Class preference (:data:`MODALITY_PREFERENCE`): for *appearance* classes (distinct scenes and objects:
   Billiards, GolfSwing, ...) the appearance prototypes are distinct while the motion prototypes of the group
   share most of one direction (a generic swing), so motion alone confuses them; for *motion* classes (the
   track-and-field group: HighJump, LongJump, PoleVault, ...) it is the other way round (one stadium look, distinct
   movements); *both* classes are distinct in both modalities at medium amplitude.
2. Per-video reliability r_appearance, r_motion: each video is ``clean`` (both in 0.8-1.2), ``far_camera``
   (motion 0.15-0.3) or ``look_alike`` (appearance 0.3-0.5, and the scene holds a look-alike class), so no fixed
   per-class weighting is right for every video.
3. Action steps carry the class signal on top of the scene, so their L2 norm exceeds the background's on average
   (what action-aware pooling, Eq. (1), relies on).
4. Boundary bleed: for motion classes the appearance envelope extends 0.5-1 action durations before and after the
   true segment (the athlete is on the runway before the jump: the paper's Fig. 1a), the motion envelope does not.
5. Structured distractors: the unreliable modality carries action-shaped bursts in the background (a camera pan in
   motion for ``far_camera`` videos, a look-alike class's appearance prototype for ``look_alike`` videos), not
   white noise.
6. Deterministic: every video draws from its own generator seeded by (seed, split, index), so the files are
   byte-identical for a seed, whatever the order they are written in; and every sum and exponential is computed
   with :mod:`sac_minimal.data.portable`, so they are the same bytes on every machine, whatever its BLAS kernel,
   thread count or instruction set (:data:`BYTES_REVISION`).

How unreliable a modality is. A modality of reliability r has noise of standard deviation ``NOISE_SCALE / r``
while its signal keeps its amplitude, so an unreliable modality has a low signal-to-noise ratio in that video, as a
far camera's optical flow or a look-alike scene's appearance would. Reliability also changes inside a video:
*corrupted* stretches (1-4 s, about 1.5 a minute: blur, replays, overlays) multiply both modalities' reliability by
a factor, which frame attention can find. The distractors are drawn per video: each far-camera video pans in its
own direction, and each look-alike video shows its own confusable class of the same preference group.

Heterogeneity h (``heterogeneity``, 0 <= h). One setting scales everything that makes a modality unreliable in a
video: each reliability is ``r_1 ** h`` and each corruption factor ``f_1 ** h`` (r_1, f_1: the draws at h = 1, so the
spread of log-reliabilities is h times theirs), and the distractors' amplitude is ``h x DISTRACTOR_AMPLITUDE``. At
h = 0 every r is 1, no stretch is corrupted and no distractor is drawn: there is nothing for a per-video or per-frame
attention to find (the null control). Every other draw (annotations, prototypes, noise) is shared by all h of a
world, so a change of h changes nothing else.

Worlds. The generator's ``seed`` is the *world*: an independent draw of prototypes, videos and noise. Conclusions
about a model are tested across worlds (:mod:`sac_minimal.replication`).

Generator versions (:data:`GENERATOR_VERSION`; every record names the one it used):

* v1 scaled a modality's *amplitude* with its reliability (a detector could undo it with fixed weights);
* v2 scaled its *noise* by 1 / r and added corrupted stretches and per-video distractors;
* **v3** (written by default) is v2 plus the heterogeneity h, and **class coverage**: in each split
  the first 20 videos are one per class, in an order drawn per world, each with at least
  :data:`COVERAGE_INSTANCES` instances of its class and no second class, so that at every size from ``quick`` up
  every class has at least 3 training and 3 test instances in every world (v2 left some classes without a single
  training instance). The other videos draw their class with THUMOS14's test-set frequencies as before.

* **v4** is the regime where an unreliable modality *misleads* rather than only being noisy (v3 stays the default
  and the book keeps both). In v3 an unreliable modality has more white noise, which any learned projection averages
  away, and its reliability shows in its feature norm, so SSAD already adapts and no reweighting with the truth
  helps (notebook 10). v4 changes three things, each a property of THUMOS14-like data rather than of SAC:

  - *misleading stretches*: a modality of reliability r in a video is wholly replaced by misleading content on
    stretches of 1-4 s covering 1 - :func:`clean_share` (r) of the video (:func:`misleading_mask`; recorded as
    ``misleading`` in ``synthetic.json``) and clean elsewhere: a far camera's flow is useless while the camera
    shakes or zooms and fine in between, a look-alike scene fills some shots and not others. A step is ``base + m
    c(t) + sqrt(1 - m^2) e u(t) / |u(t)|``, with c the clean content (class signal and noise), m = 0 on a misleading
    stretch (else :func:`clean_share` of the corrupted stretches' factor), and u the misleading content: a
    *confuser* class of the same preference group in that modality, in bursts at random times (not aligned with
    the video's actions, so it carries no timing), plus the world's *corruption signature*
    (:func:`corruption_signatures`, at a subtle weight :data:`SIGNATURE_WEIGHT_V4`) and noise, scaled to the
    video's RMS energy e of c, so reliability is not in the feature norm, but the signature makes it learnable
    (:func:`~sac_minimal.data.probe.reliability_probe`);
  - *partly redundant evidence*: in the modality that does not identify a group, its classes share
    :data:`SHARED_DIRECTION_WEIGHT_V4` of one direction (v3: :data:`SHARED_DIRECTION_WEIGHT`), so the reliable
    modality can stand in for the misleading one;
  - the same worlds, h, conditions, corrupted stretches and class coverage as v3 (h raises every reliability and
    corruption factor to the power h; at h = 0 m = 1 everywhere and no step is misleading).

* **v5** is v4 with two changes, chosen on its development worlds with SSAD and the controls only
  (``results/acceptance_v5_quick/development.json``):

  - misleading *shots* instead of short stretches: each misleading stretch lasts :data:`SHOT_SECONDS` (10-30 s,
    about one to two windows of 128 steps), so that a modality misleads for whole windows at a time (a stretch
    filmed by a static far camera, a replay or a shot under an on-screen overlay). In v4 a modality misleads for
    1-4 s at a time, so a window of 17 s holds clean and misleading steps alike and only a weight that changes
    from step to step can tell them apart; SAC's modality attention is one share per window (a_m);
  - a *conflicting* confuser: on a misleading shot the confuser class appears at the times of the video's own
    actions (:data:`SYNCHRONOUS_CONFUSER`), not at random times, so the two streams disagree about the class at
    every action there (a look-alike movement seen from afar, a look-alike scene), and only knowing which stream
    to trust in that window resolves it. With shots alone (the first design) the control per window gained
    nothing: the misleading stream mostly removed evidence, which no weighting can give back.

  Everything else (the share of a video that misleads, the signature, the corrupted stretches of 1-4 s, the
  annotations) is v4's.

* **v6** is v5 with four changes, chosen on its development worlds with SSAD and the controls only (nine designs,
  ``results/acceptance_v6_quick/development.json``), so that the control per window would win. It did not pass its
  acceptance test on twelve fresh worlds (``results/acceptance_v6_quick``), so no attention model trains on it:

  - *long* misleading shots of :data:`LONG_SHOT_SECONDS` (30-90 s), so that most windows are wholly clean or wholly
    misleading in a modality and one weight per window can tell them apart;
  - covering *half* the share of the video that they cover in v4 and v5 (``misleading_scale`` 0.5: a far-camera
    video's motion misleads for 31-40 % of it at h = 1), so that a video mixes clean and misleading windows and there
    is a window to choose (with the full share most such videos misled throughout at h = 1, and the control's gain
    did not grow from h = 0.5 to h = 1);
  - *fully redundant evidence*: the modality a class does not prefer identifies it too (its prototypes share no
    direction, ``shared_weight`` 0) at the same amplitude as the preferred one (``other_amplitude`` 1), so that where
    one stream misleads the other carries the class alone and turning the misleading one down gives the class back
    (v5's control per window gained nothing: the misleading stream mostly removed evidence);
  - the conflicting confuser of v5 and v4's signature weight are kept.

  This models videos in which one stream is wrong for long stretches while the other is fine: a static or far
  camera whose optical flow shows the wrong motion for a whole shot, a replay or an on-screen overlay over a long
  shot, and classes that both streams can recognise on their own. Each version's draws are a
  :class:`MisleadingRegime` (:data:`MISLEADING_REGIMES`).

Everything the generator decided (class preferences, each video's condition, r_appearance and r_motion, its
corrupted stretches and look-alike class) is written to ``root/synthetic.json`` next to the dataset, so that tests,
notebooks and the reference gate (:func:`reference_gates`) can use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
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
from sac_minimal.data.fingerprint import dataset_fingerprint
from sac_minimal.data.portable import exp, power, weighted_sum
from sac_minimal.files import TEMPORARY_SUFFIX, save_npy_atomic, write_text_atomic

GENERATOR_VERSION = 3
GENERATOR_VERSIONS = (3, 4, 5, 6)
"""v3: the regime where unreliability is visible noise that any read-out averages away; v4: the regime where it
misleads on short stretches; v5: where it misleads for whole shots; v6: for long shots while the other stream carries
the class alone (module docstring). All are written; v3 stays the default."""
BYTES_REVISION = 2
"""Which way of computing a world's bytes wrote a surrogate, for one generative model. 2: every sum and exponential
is computed with :mod:`sac_minimal.data.portable`, so a world is the same bytes on every machine. 1 (surrogates and
records made before it): numpy's BLAS product and vector ``exp``, whose last bits depend on the CPU, on
``OPENBLAS_CORETYPE`` and on the thread count. A cached surrogate of another revision is written again."""
METADATA_FILE = "synthetic.json"
VERSION_PREFIX = "synthetic-thumos14-surrogate"

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
    "tiny": SyntheticSize(train_videos=12, test_videos=12, channels_per_modality=16, median_duration=25.0,
                          duration_sigma=0.3, min_duration=12.0, max_duration=60.0, max_action_duration=10.0),
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
SHARED_DIRECTION_WEIGHT_V4 = 0.3
"""v4: a class's prototype in the modality that does not identify it keeps more of its own direction, so that the
reliable modality can stand in for the other (partly redundant evidence)."""
SIGNATURE_WEIGHT_V4 = 0.3
"""v4: weight of the world's corruption signature in the misleading content (before it is scaled to the video's
energy): subtle, so that a probe learns it (:func:`~sac_minimal.data.probe.reliability_probe`) but nothing flags it
loudly."""
AMPLITUDE = {"preferred": 1.0, "other": 0.7, "both": 0.8}
DISTRACTOR_AMPLITUDE = 0.9
DISTRACTORS_PER_MINUTE = 4.0
CORRUPTIONS_PER_MINUTE = 1.5
"""Corrupted stretches (both modalities less reliable) per minute of video."""
CORRUPTION_SECONDS = (1.0, 4.0)
SHOT_SECONDS = (10.0, 30.0)
"""v5: a misleading stretch lasts 10-30 s (a shot), v4's last :data:`CORRUPTION_SECONDS`."""
LONG_SHOT_SECONDS = (30.0, 90.0)
"""v6: a misleading stretch lasts 30-90 s (a long shot: most of a window of 17 s, often a whole quick video)."""
CORRUPTION_FACTOR = (0.25, 0.5)
"""A corrupted stretch lasts 1-4 s and multiplies both modalities' reliability by 0.25-0.5 (at h = 1)."""
COVERAGE_INSTANCES = 3
"""Instances of its class in each of a split's first 20 videos (one video per class): class coverage."""
ACTION_SHARE = 0.6
"""Actions fill at most this share of a video."""


@dataclass(frozen=True)
class MisleadingRegime:
    """What a generator version in which an unreliable modality misleads (v4 and later, :func:`_features_v4`) draws
    its own way.

    Attributes:
        stretch_seconds: (low, high) length of each misleading stretch in seconds.
        synchronous_confuser: the confuser appears at the times of the video's own actions (the two streams
            conflict), else in bursts at random times.
        shared_weight: in the modality that does not identify a group, the share of one direction its classes have
            in common (0: that modality identifies the class too).
        other_amplitude: a class's signal amplitude in the modality it does not prefer (the preferred one's is 1).
        signature_weight: weight of the world's corruption signature in the misleading content, before that content
            is scaled to the video's energy.
        misleading_scale: the misleading stretches of a modality of reliability r cover ``misleading_scale x (1 -
            clean_share(r))`` of the video (v4, v5: 1).
    """

    stretch_seconds: tuple
    synchronous_confuser: bool
    shared_weight: float
    other_amplitude: float
    signature_weight: float
    misleading_scale: float = 1.0


MISLEADING_REGIMES = {
    4: MisleadingRegime(CORRUPTION_SECONDS, False, SHARED_DIRECTION_WEIGHT_V4, AMPLITUDE["other"], SIGNATURE_WEIGHT_V4),
    5: MisleadingRegime(SHOT_SECONDS, True, SHARED_DIRECTION_WEIGHT_V4, AMPLITUDE["other"], SIGNATURE_WEIGHT_V4),
    6: MisleadingRegime(LONG_SHOT_SECONDS, True, 0.0, 1.0, SIGNATURE_WEIGHT_V4, misleading_scale=0.5),
}
"""Each misleading generator version's regime (module docstring)."""
MISLEADING_VERSIONS = tuple(MISLEADING_REGIMES)


@dataclass(frozen=True)
class SurrogateWorld:
    """What is shared by all videos of a world (a seed): class prototypes, duration factors, class coverage.

    Attributes:
        appearance_prototypes, motion_prototypes: ``[20, D]`` unit vectors.
        look_alike: ``[20]`` a class of the same preference group for each class: the control direction that
            :func:`measure_surrogate_properties` projects clean videos on (look-alike videos draw their own).
        duration_factor: ``[20]`` multiplies the median action duration.
        class_probabilities: ``[20]`` main-class distribution.
        coverage: ``{"train": [20], "test": [20]}`` the main class of each split's first 20 videos (a permutation).
    """

    appearance_prototypes: np.ndarray
    motion_prototypes: np.ndarray
    look_alike: np.ndarray
    duration_factor: np.ndarray
    class_probabilities: np.ndarray
    coverage: dict


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _preference_partners(preference: np.ndarray, index: int) -> np.ndarray:
    """The other classes of class ``index``'s preference group."""
    return np.flatnonzero((preference == preference[index]) & (np.arange(len(preference)) != index))


def make_world(seed: int, channels: int, shared_weight: float = SHARED_DIRECTION_WEIGHT) -> SurrogateWorld:
    """Class prototypes with the preference structure of :data:`MODALITY_PREFERENCE` (property 1); in the modality
    that does not identify a group, its classes share ``shared_weight`` of one direction."""
    rng = np.random.default_rng([seed, 0])
    preference = np.array([MODALITY_PREFERENCE[name] for name in THUMOS14_CLASSES])
    prototypes = {}
    for modality, confusable_group in (("appearance", "motion"), ("motion", "appearance")):
        distinct = _unit(rng.standard_normal((len(THUMOS14_CLASSES), channels)))
        shared = _unit(rng.standard_normal(channels))
        # In the modality that does not identify them, the group's classes share one direction.
        blended = _unit(shared_weight * shared + (1 - shared_weight) * distinct)
        prototypes[modality] = np.where((preference == confusable_group)[:, None], blended, distinct)
    look_alike = np.array([rng.choice(_preference_partners(preference, index))
                           for index in range(len(THUMOS14_CLASSES))], dtype=np.int64)
    counts = np.array([THUMOS14_TEST_CLASS_COUNTS[name] for name in THUMOS14_CLASSES], dtype=np.float64)
    duration_factor = exp(0.3 * rng.standard_normal(len(THUMOS14_CLASSES)))
    coverage = {split: rng.permutation(len(THUMOS14_CLASSES)) for split in ("train", "test")}
    return SurrogateWorld(
        appearance_prototypes=prototypes["appearance"].astype(np.float32),
        motion_prototypes=prototypes["motion"].astype(np.float32),
        look_alike=look_alike,
        duration_factor=duration_factor,
        class_probabilities=counts / counts.sum(),
        coverage=coverage,
    )


def _amplitudes(label: int, other: float = AMPLITUDE["other"]) -> tuple[float, float]:
    """(appearance, motion) amplitude of a class's signal; ``other`` in the modality it does not prefer."""
    preference = MODALITY_PREFERENCE[THUMOS14_CLASSES[label]]
    if preference == "both":
        return AMPLITUDE["both"], AMPLITUDE["both"]
    if preference == "appearance":
        return AMPLITUDE["preferred"], other
    return other, AMPLITUDE["preferred"]


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


def step_seconds_of(steps: int, fps: float) -> np.ndarray:
    """``[T]`` the time in seconds at the centre of each feature step (frame ``4 i + 8``)."""
    return (FRAMES_PER_STEP * np.arange(steps) + 2 * FRAMES_PER_STEP) / fps


@dataclass(frozen=True)
class _Timeline:
    """A video's annotation draws: what both generator versions share."""

    duration: float
    fps: float
    step_seconds: np.ndarray
    main_class: int
    labels: np.ndarray
    action_seconds: np.ndarray
    segments: np.ndarray


def _draw_timeline(rng: np.random.Generator, world: SurrogateWorld, size: SyntheticSize,
                   coverage_class: int | None = None) -> _Timeline:
    """A video's duration, fps, classes and segments. A *coverage* video (``coverage_class`` given) has that main
    class, at least :data:`COVERAGE_INSTANCES` instances of it and no second class; its actions are shortened
    where needed so that all of them fit in :data:`ACTION_SHARE` of the video."""
    duration = float(np.clip(size.median_duration * exp(size.duration_sigma * rng.standard_normal()),
                             size.min_duration, size.max_duration))
    fps = float(rng.choice(FPS_VALUES, p=FPS_PROBABILITIES))
    steps = round(duration * fps) // FRAMES_PER_STEP
    main_class = int(rng.choice(len(THUMOS14_CLASSES), p=world.class_probabilities))
    count = max(1, round(duration / SECONDS_PER_INSTANCE * float(exp(0.6 * rng.standard_normal()))))
    second_class = rng.random() < SECOND_CLASS_PROBABILITY
    if coverage_class is not None:
        main_class, count, second_class = coverage_class, max(count, COVERAGE_INSTANCES), False
    labels = np.full(count, main_class)
    if second_class:
        labels[rng.random(count) < 0.3] = int(rng.choice(len(THUMOS14_CLASSES), p=world.class_probabilities))
    action_seconds = np.clip(MEDIAN_ACTION_SECONDS * world.duration_factor[labels]
                             * exp(0.75 * rng.standard_normal(count)), 0.3, size.max_action_duration)
    if coverage_class is not None:  # keep every instance: shorten them all until they fit
        action_seconds *= min(1.0, ACTION_SHARE * duration / action_seconds.sum())
    else:
        keep = np.cumsum(action_seconds) <= ACTION_SHARE * duration
        keep[0] = action_seconds[0] <= 0.9 * duration
        labels, action_seconds = labels[keep], action_seconds[keep]
    segments = _place_intervals(rng, action_seconds, duration)
    return _Timeline(duration, fps, step_seconds_of(steps, fps), main_class, labels, action_seconds, segments)


def _draw_reliability(rng: np.random.Generator, heterogeneity: float) -> tuple[str, float, float]:
    """(condition, r_appearance, r_motion) of a video (property 2): the draws at h = 1 raised to the power h."""
    condition = str(rng.choice(CONDITIONS, p=CONDITION_PROBABILITIES))
    appearance, motion = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)
    if condition == "far_camera":
        motion = rng.uniform(0.15, 0.3)
    elif condition == "look_alike":
        appearance = rng.uniform(0.3, 0.5)
    return condition, float(power(appearance, heterogeneity)), float(power(motion, heterogeneity))


def _signal_envelopes(rng: np.random.Generator, timeline: _Timeline) -> tuple[np.ndarray, np.ndarray]:
    """``[T, n]`` appearance and motion envelopes of the instances; appearance bleeds for motion classes
    (property 4)."""
    labels = timeline.labels
    motion_class = np.array([MODALITY_PREFERENCE[THUMOS14_CLASSES[label]] == "motion" for label in labels])
    bleed = (np.where(motion_class, rng.uniform(0.5, 1.0, len(labels)), 0.0)[:, None]
             * timeline.action_seconds[:, None])
    appearance = _envelope(timeline.step_seconds, timeline.segments + np.concatenate([-bleed, bleed], axis=1))
    return appearance, _envelope(timeline.step_seconds, timeline.segments)


def _distractor_envelope(rng: np.random.Generator, timeline: _Timeline, avoid_actions: bool = True) -> np.ndarray:
    """``[T, 1]`` action-shaped bursts (1-4 s) in the background, at least 1 s away from every action (or, with
    ``avoid_actions`` False, anywhere, across actions as well)."""
    duration, segments = timeline.duration, timeline.segments
    count = rng.poisson(DISTRACTORS_PER_MINUTE * duration / 60.0)
    lengths = rng.uniform(1.0, 4.0, count)
    starts = rng.uniform(0.0, duration, count)
    bursts = np.stack([starts, starts + lengths], axis=1)
    if not avoid_actions:
        return _envelope(timeline.step_seconds, bursts).sum(axis=1, keepdims=True)
    overlaps_action = ((bursts[:, None, 0] < segments[None, :, 1] + 1.0)
                       & (bursts[:, None, 1] > segments[None, :, 0] - 1.0)).any(axis=1)
    return _envelope(timeline.step_seconds, bursts[~overlaps_action]).sum(axis=1, keepdims=True)


def pan_direction(seed: int, split: str, index: int, channels: int) -> np.ndarray:
    """The ``[D]`` unit direction of one far-camera video's camera pan, from its own generator stream."""
    return _unit(np.random.default_rng([seed, _split_code(split), index, 3]).standard_normal(channels)).astype(
        np.float32)


def _split_code(split: str) -> int:
    return 1 if split == "train" else 2


def _scene_and_noise(rng: np.random.Generator, steps: int, channels: int) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray]:
    """The scene ``[D]`` (appearance), the camera ``[D]`` (motion) and unit-scale noise ``[T, 2 D]``."""
    scene = SCENE_SCALE * _unit(rng.standard_normal(channels)).astype(np.float32)
    camera = 0.3 * SCENE_SCALE * _unit(rng.standard_normal(channels)).astype(np.float32)
    noise = rng.standard_normal((steps, 2 * channels), dtype=np.float32) * np.float32(NOISE_SCALE / np.sqrt(channels))
    return scene, camera, noise


def _features(rng, world: SurrogateWorld, timeline: _Timeline, condition: str, reliability: tuple,
              envelopes: tuple, pan: np.ndarray, heterogeneity: float) -> tuple[np.ndarray, dict]:
    """Reliability scales each modality's noise (1 / r), per step; per-video distractors; h scales the distractors'
    amplitude and the corruption factors (module docstring)."""
    labels, step_seconds = timeline.labels, timeline.step_seconds
    preference = np.array([MODALITY_PREFERENCE[name] for name in THUMOS14_CLASSES])
    amplitudes = np.array([_amplitudes(label) for label in labels], dtype=np.float32).reshape(-1, 2)
    appearance = weighted_sum(envelopes[0] * amplitudes[:, 0], world.appearance_prototypes[labels])
    motion = weighted_sum(envelopes[1] * amplitudes[:, 1], world.motion_prototypes[labels])
    look_alike = None
    if condition != "clean":
        distractors = heterogeneity * DISTRACTOR_AMPLITUDE * _distractor_envelope(rng, timeline)
        if condition == "far_camera":
            motion += distractors * pan
        else:
            look_alike = int(rng.choice(_preference_partners(preference, timeline.main_class)))
            appearance += distractors * world.appearance_prototypes[look_alike]
    corruptions, frame_factor = _draw_corruptions(rng, timeline, heterogeneity)
    channels = world.appearance_prototypes.shape[1]
    scene, camera, features = _scene_and_noise(rng, len(step_seconds), channels)
    features[:, :channels] /= (reliability[0] * frame_factor)[:, None].astype(np.float32)
    features[:, channels:] /= (reliability[1] * frame_factor)[:, None].astype(np.float32)
    features[:, :channels] += appearance + scene
    features[:, channels:] += motion + camera
    return features, {"corruptions": corruptions,
                      "look_alike_class": None if look_alike is None else THUMOS14_CLASSES[look_alike]}


def corruption_signatures(seed: int, channels: int) -> np.ndarray:
    """``[2, D]`` a world's corruption signature per modality (v4): the direction that unreliable content of that
    modality shares (a far camera's shake in the flow, a look-alike scene's or an overlay's look in the RGB), drawn
    from its own stream so that the prototypes of v3 and v4 worlds are the same draws."""
    return _unit(np.random.default_rng([seed, 0, 4]).standard_normal((2, channels))).astype(np.float32)


CLEAN_RELIABILITY = 0.8
"""v4: a step whose reliability is at least this (the lowest of a clean video's draws) is clean content only."""


def clean_share(reliability: np.ndarray) -> np.ndarray:
    """v4's mixing weight m = min(1, r / :data:`CLEAN_RELIABILITY`) of a step's reliability r: the weight of the clean
    content in the step; the rest, sqrt(1 - m^2), is misleading content of the same energy, so m^2 is the share of
    the step's energy that is clean."""
    return np.minimum(1.0, np.asarray(reliability, dtype=np.float64) / CLEAN_RELIABILITY)


def _features_v4(rng, world: SurrogateWorld, timeline: _Timeline, condition: str, reliability: tuple,
                 envelopes: tuple, signatures: np.ndarray, heterogeneity: float,
                 regime: MisleadingRegime = MISLEADING_REGIMES[4]) -> tuple[np.ndarray, dict]:
    """v4 (module docstring): each modality's step is ``base + m c(t) + sqrt(1 - m^2) e u(t)/|u(t)|`` with c the
    clean content (class signal and noise, as in v3 at reliability 1), u misleading content (a confuser class of the
    same modality in bursts at random times, the world's corruption signature and noise), e the video's RMS energy of
    c, and m the step's clean share: 0 on the modality's *misleading stretches* (:func:`misleading_mask`, covering
    ``regime.misleading_scale`` x (1 - :func:`clean_share` (r)) of the video, each ``regime.stretch_seconds`` long:
    v4 1-4 s, v5 :data:`SHOT_SECONDS`, v6 :data:`LONG_SHOT_SECONDS`), else :func:`clean_share` of the corrupted
    stretches' factor. With
    ``regime.synchronous_confuser`` (v5, v6) the confuser follows the envelope of the video's own actions in that
    modality instead of random bursts (:class:`MisleadingRegime`)."""
    labels, step_seconds = timeline.labels, timeline.step_seconds
    preference = np.array([MODALITY_PREFERENCE[name] for name in THUMOS14_CLASSES])
    amplitudes = np.array([_amplitudes(label, regime.other_amplitude) for label in labels],
                          dtype=np.float32).reshape(-1, 2)
    channels = world.appearance_prototypes.shape[1]
    prototypes = (world.appearance_prototypes, world.motion_prototypes)
    confuser = int(rng.choice(_preference_partners(preference, timeline.main_class)))
    bursts = _distractor_envelope(rng, timeline, avoid_actions=False)
    corruptions, frame_factor = _draw_corruptions(rng, timeline, heterogeneity)
    scene, camera, noise = _scene_and_noise(rng, len(step_seconds), channels)
    misleading_noise = rng.standard_normal((len(step_seconds), 2 * channels), dtype=np.float32) * np.float32(
        NOISE_SCALE / np.sqrt(channels))
    features = np.empty((len(step_seconds), 2 * channels), dtype=np.float32)
    misleading = []
    for modality, base in enumerate((scene, camera)):
        columns = slice(modality * channels, (modality + 1) * channels)
        clean = weighted_sum(envelopes[modality] * amplitudes[:, modality], prototypes[modality][labels]) \
            + noise[:, columns]
        timing = np.minimum(envelopes[modality].sum(axis=1, keepdims=True), 1.0) if regime.synchronous_confuser \
            else bursts
        wrong = (timing * amplitudes[:, modality].max(initial=1.0)) * prototypes[modality][confuser]
        wrong = wrong + regime.signature_weight * signatures[modality] + misleading_noise[:, columns]
        energy = np.sqrt(np.mean(np.sum(clean ** 2, axis=1)))
        wrong = wrong * (energy / np.maximum(np.linalg.norm(wrong, axis=1, keepdims=True), 1e-6))
        stretches = _draw_stretches(rng, timeline.duration,
                                    regime.misleading_scale * (1.0 - float(clean_share(reliability[modality]))),
                                    regime.stretch_seconds)
        misleading.append(stretches)
        share = np.where(misleading_mask(stretches, step_seconds), 0.0, clean_share(frame_factor))[:, None]
        features[:, columns] = base + share * clean + np.sqrt(1.0 - share ** 2) * wrong
    return features, {"corruptions": corruptions, "confuser_class": THUMOS14_CLASSES[confuser],
                      "look_alike_class": None, "misleading": misleading}


def _draw_stretches(rng: np.random.Generator, duration: float, share: float,
                    seconds: tuple = CORRUPTION_SECONDS) -> list:
    """``[[start, end], ...]``: stretches lasting ``seconds`` (low, high) at random places until they cover ``share``
    of the video (their union; none for a share of 0)."""
    stretches, covered, grid = [], 0.0, np.linspace(0.0, duration, 2001)
    while covered < share * duration and len(stretches) < 1000:
        length = rng.uniform(*seconds)
        begin = rng.uniform(-length, duration)
        stretches.append([round(float(begin), 3), round(float(begin + length), 3)])
        covered = misleading_mask(stretches, grid).mean() * duration
    return stretches


def misleading_mask(stretches: list, step_seconds: np.ndarray) -> np.ndarray:
    """``[T]`` bool: the steps inside any of a modality's misleading stretches (v4): where they would set the frame
    factor of :func:`corruption_factor` to 0."""
    return corruption_factor([[begin, end, 0.0] for begin, end in stretches], step_seconds) == 0


def _draw_corruptions(rng: np.random.Generator, timeline: _Timeline, heterogeneity: float) -> tuple[list, np.ndarray]:
    """A video's corrupted stretches ``[[start, end, factor], ...]`` (about :data:`CORRUPTIONS_PER_MINUTE`, each
    :data:`CORRUPTION_SECONDS` long, factors :data:`CORRUPTION_FACTOR` raised to the power h) and its per-step frame
    factor ``[T]`` (:func:`corruption_factor`)."""
    count = rng.poisson(CORRUPTIONS_PER_MINUTE * timeline.duration / 60.0)
    lengths = rng.uniform(*CORRUPTION_SECONDS, count)
    starts = rng.uniform(0.0, timeline.duration - lengths.clip(max=timeline.duration), count)
    factors = power(rng.uniform(*CORRUPTION_FACTOR, count), heterogeneity)
    corruptions = [[round(float(start), 3), round(float(start + length), 3), round(float(factor), 4)]
                   for start, length, factor in zip(starts, lengths, factors)]
    return corruptions, corruption_factor(corruptions, timeline.step_seconds)


def corruption_factor(corruptions: list, step_seconds: np.ndarray) -> np.ndarray:
    """``[T]`` the frame factor: the smallest factor of the corrupted stretches covering each step, else 1."""
    factor = np.ones(len(step_seconds))
    for start, end, value in corruptions:
        inside = (step_seconds >= start) & (step_seconds <= end)
        factor[inside] = np.minimum(factor[inside], value)
    return factor


def synthesize_video(world: SurrogateWorld, size: SyntheticSize, seed: int, split: str, index: int,
                     version: int = GENERATOR_VERSION, heterogeneity: float = 1.0) -> dict:
    """One video: its annotation entry, what the generator decided about it (condition, reliabilities, ...), and
    features ``[T, 2 D]`` (appearance columns first)."""
    check_generator_arguments(version, heterogeneity)
    rng = np.random.default_rng([seed, _split_code(split), index])
    coverage = world.coverage[split]
    timeline = _draw_timeline(rng, world, size, int(coverage[index]) if index < len(coverage) else None)
    condition, appearance_reliability, motion_reliability = _draw_reliability(rng, heterogeneity)
    reliability = (appearance_reliability, motion_reliability)
    envelopes = _signal_envelopes(rng, timeline)
    if version in MISLEADING_VERSIONS:
        signatures = corruption_signatures(seed, size.channels_per_modality)
        features, decided = _features_v4(rng, world, timeline, condition, reliability, envelopes, signatures,
                                         heterogeneity, MISLEADING_REGIMES[version])
    else:
        pan = pan_direction(seed, split, index, size.channels_per_modality)
        features, decided = _features(rng, world, timeline, condition, reliability, envelopes, pan, heterogeneity)

    fps = timeline.fps
    annotations = [{"label": THUMOS14_CLASSES[label], "segment": [round(start, 2), round(end, 2)],
                    "segment(frames)": [round(start * fps, 1), round(end * fps, 1)], "label_id": int(label)}
                   for (start, end), label in zip(timeline.segments.tolist(), timeline.labels.tolist())]
    diving = CLASS_ID["Diving"]
    annotations += [{**entry, "label": "Diving", "label_id": diving}
                    for entry in annotations if entry["label"] == "CliffDiving"]
    annotations.sort(key=lambda entry: (entry["segment"][0], entry["label_id"]))
    return {
        "entry": {"subset": "Validation" if split == "train" else "Test", "duration": round(timeline.duration, 2),
                  "fps": fps, "annotations": annotations},
        "condition": condition,
        "video": {"condition": condition, "reliability": [round(value, 4) for value in reliability], **decided},
        "features": features,
    }


MAX_HETEROGENEITY = 8.0
"""The largest h the generator accepts: at h = 8 the least reliable draws (0.15 ** 8 < 1e-6) already leave nothing of
a modality; beyond, only underflow would change."""


def world_shared_weight(version: int) -> float:
    """The prototypes' shared-direction weight of a generator version (v4 and v5: partly redundant evidence)."""
    return MISLEADING_REGIMES[version].shared_weight if version in MISLEADING_REGIMES else SHARED_DIRECTION_WEIGHT


def check_generator_arguments(version, heterogeneity) -> None:
    """A clear error for a generator version this package cannot write or a heterogeneity that is not a finite
    number >= 0."""
    if version not in GENERATOR_VERSIONS:
        raise ValueError(f"surrogate generator version must be one of {GENERATOR_VERSIONS}, got {version!r}")
    if isinstance(heterogeneity, bool) or not isinstance(heterogeneity, (int, float, np.floating, np.integer)) \
            or not np.isfinite(heterogeneity) or not 0 <= heterogeneity <= MAX_HETEROGENEITY:
        raise ValueError(f"heterogeneity must be a number from 0 to {MAX_HETEROGENEITY:g} (0: every reliability 1, "
                         f"1: the full spread), got {heterogeneity!r}")


def video_name(split: str, index: int) -> str:
    """Surrogate video ids never collide with THUMOS14's (``video_validation_...``, ``video_test_...``)."""
    return f"synthetic_{'validation' if split == 'train' else 'test'}_{index + 1:07d}"


def parse_video_name(name: str) -> tuple[str, int]:
    """Inverse of :func:`video_name`: ``(split, index)``."""
    _, subset, number = name.split("_")
    return ("train" if subset == "validation" else "test"), int(number) - 1


def _is_leftover(path: Path) -> bool:
    """A temporary file that an atomic write of this generator left when it was killed (``.<name>.<random>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX) and path.is_file()


def _check_writable(root: Path, version: int) -> None:
    """Refuse to write into a folder that holds anything but a surrogate of the same generator version."""
    annotation_path = root / ANNOTATION_FILE
    metadata_path = root / METADATA_FILE
    if metadata_path.exists():
        try:
            found = json.loads(metadata_path.read_text()).get("generator_version")
        except (json.JSONDecodeError, AttributeError):
            found = None
        if found != version:
            raise FileExistsError(f"{root} holds a surrogate of generator version {found} ({metadata_path}); "
                                  f"writing version {version} there would mix the two. Choose another folder.")
    elif annotation_path.exists():
        if surrogate_label(root) is None:
            raise FileExistsError(f"{root} holds an annotation file that this generator did not write "
                                  f"({annotation_path}); it may be a real dataset. Choose an empty folder.")
    ours = {ANNOTATION_FILE.parts[0], FEATURE_FOLDER, FEATURE_FORMAT_FILE, METADATA_FILE}
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        foreign = path.name not in ours and not _is_leftover(path)
        if path.name == FEATURE_FOLDER and path.is_dir():
            foreign = next((item for item in sorted(path.iterdir())
                            if not item.name.startswith("synthetic_") and not _is_leftover(item)), None)
            path = foreign if foreign else path
        elif path.name == ANNOTATION_FILE.parts[0] and path.is_dir():
            foreign = next((item for item in sorted(path.iterdir())
                            if item.name != ANNOTATION_FILE.name and not _is_leftover(item)), None)
            path = foreign if foreign else path
        if foreign:
            raise FileExistsError(f"{root} is not empty and holds {path}, which the surrogate generator did not "
                                  "write; it never overwrites or mixes with other files. Choose an empty folder.")


def write_synthetic_thumos(root: str | Path, size: str = "quick", seed: int = 0,
                           version: int = GENERATOR_VERSION, heterogeneity: float = 1.0) -> dict:
    """Write a surrogate dataset under ``root`` in the ActionFormer layout and return its metadata.

    Args:
        size: ``tiny`` | ``quick`` | ``full`` (:data:`SIZES`).
        seed: the world (module docstring).
        heterogeneity: h, how much reliability varies across and within videos (0: not at all; 1: the full spread).

    Files: ``annotations/thumos14.json``, ``i3d_features/{video}.npy`` (float32 ``[T, 2 D]``, appearance first),
    ``feature_format.json`` (so the reader knows the width) and ``synthetic.json`` (generator version, world, h,
    each video's condition and reliabilities, the class preferences, generation time). ``root`` must be empty,
    missing, or a surrogate of the same generator version (whose feature files this one does not have are deleted):
    any other file there raises ``FileExistsError``.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    check_generator_arguments(version, heterogeneity)
    heterogeneity = float(heterogeneity)
    started = time.perf_counter()
    scale = SIZES[size]
    root = Path(root)
    _check_writable(root, version)
    for folder in (root, root / FEATURE_FOLDER, root / ANNOTATION_FILE.parent):  # a killed writer's leftovers
        for leftover in [path for path in folder.glob(f".*{TEMPORARY_SUFFIX}") if _is_leftover(path)]:
            leftover.unlink(missing_ok=True)
    (root / METADATA_FILE).unlink(missing_ok=True)  # until it is written again, the folder is incomplete
    (root / FEATURE_FOLDER).mkdir(parents=True, exist_ok=True)
    (root / ANNOTATION_FILE).parent.mkdir(parents=True, exist_ok=True)
    world = make_world(seed, scale.channels_per_modality, world_shared_weight(version))
    database, videos = {}, {}
    for split, count in (("train", scale.train_videos), ("test", scale.test_videos)):
        for index in range(count):
            video = synthesize_video(world, scale, seed, split, index, version, heterogeneity)
            name = video_name(split, index)
            save_npy_atomic(root / FEATURE_FOLDER / f"{name}.npy", video["features"])
            database[name] = video["entry"]
            videos[name] = video["video"]
    for stale in (root / FEATURE_FOLDER).glob("*.npy"):  # a larger surrogate written here before
        if stale.stem not in database:
            stale.unlink()
    label = f"{VERSION_PREFIX} v{version} size={size} seed={seed} h={heterogeneity:g}"
    write_text_atomic(root / ANNOTATION_FILE, json.dumps({"version": label, "database": database}))
    feature_format = FeatureFormat(width=2 * scale.channels_per_modality, channel_order="rgb_flow",
                                   frames_per_step=FRAMES_PER_STEP)
    write_text_atomic(root / FEATURE_FORMAT_FILE, feature_format.to_json())
    metadata = {
        "generator_version": version, "bytes_revision": BYTES_REVISION, "fingerprint": dataset_fingerprint(root),
        "size": size, "seed": seed, "heterogeneity": heterogeneity,
        "scale": dataclasses.asdict(scale), "modality_preference": MODALITY_PREFERENCE,
        "conditions": {name: entry["condition"] for name, entry in videos.items()},
        "videos": videos,
        "seconds_to_generate": round(time.perf_counter() - started, 2),
    }
    metadata["truth_sha256"] = truth_digest(json.loads(json.dumps(metadata)))
    # Written last: its presence marks a complete dataset.
    write_text_atomic(root / METADATA_FILE, json.dumps(metadata, indent=1))
    return metadata


TRUTH_FIELDS = ("generator_version", "size", "seed", "heterogeneity", "modality_preference", "conditions", "videos")
"""What ``synthetic.json`` records about a world beyond its files: which surrogate it is and its truth (each video's
condition, reliabilities, corrupted and misleading stretches), which the controls, probes and acceptance test read."""


def surrogate_label(root: str | Path) -> str | None:
    """The ``version`` label of a folder's annotation file when this generator wrote it (``synthetic-thumos14-
    surrogate v<version> size=... seed=... h=...``), else None (no such file, or another dataset's). A folder with
    this label and no ``synthetic.json`` is a surrogate whose truth and generator cannot be checked."""
    try:
        label = json.loads((Path(root) / ANNOTATION_FILE).read_text()).get("version", "")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return label if isinstance(label, str) and label.startswith(VERSION_PREFIX) else None


def truth_digest(metadata: dict) -> str:
    """SHA-256 of :data:`TRUTH_FIELDS` of a surrogate's metadata as canonical JSON (sorted keys); the generator
    stores it as ``truth_sha256`` beside the files' fingerprint, so that an edited truth is noticed like an edited
    feature file (:func:`surrogate_problems`)."""
    truth = {field: metadata.get(field) for field in TRUTH_FIELDS}
    return hashlib.sha256(json.dumps(truth, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def surrogate_problems(root: str | Path, metadata: dict) -> list[str]:
    """Why the surrogate at ``root`` is not what its generator wrote, as lines a person can act on; empty when its
    files still have the fingerprint stored in ``metadata`` (``synthetic.json``) when they were written and its
    truth the stored ``truth_sha256``."""
    problems = []
    if metadata.get("fingerprint") != dataset_fingerprint(root):
        problems.append(f"its feature or annotation files are not the ones the generator wrote (their fingerprint is "
                        f"not the one stored in {METADATA_FILE})")
    if metadata.get("truth_sha256") != truth_digest(metadata):
        problems.append(f"the truth in its {METADATA_FILE} (conditions, reliabilities, corrupted stretches) is not "
                        "the one the generator wrote" if "truth_sha256" in metadata else
                        f"its {METADATA_FILE} has no truth_sha256 (written by an older version of this package)")
    return problems


def read_synthetic_metadata(root: str | Path) -> dict:
    """The generator's record of a surrogate (``synthetic.json``)."""
    path = Path(root) / METADATA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {root} is not a complete synthetic dataset")
    return json.loads(path.read_text())


def ensure_synthetic_thumos(root: str | Path, size: str = "quick", seed: int = 0,
                            version: int = GENERATOR_VERSION, heterogeneity: float = 1.0) -> dict:
    """Return the metadata of the surrogate at ``root``, writing it first unless it is there as this package writes
    it: the same version, size, world and heterogeneity, the current :data:`BYTES_REVISION`, and files whose
    fingerprint is still the one recorded when they were written (:func:`is_current`). A stale cache (written by an
    older revision, or edited since) is written again, never used as if it were the dataset a record names.
    Processes that ask for the same surrogate at once (the shards of a grid) take turns on a lock file beside it, so
    one writes it and the others read it."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(root.parent / f".{root.name}.lock"):
        try:
            metadata = read_synthetic_metadata(root)
            if is_current(root, metadata, version, size, seed, heterogeneity):
                return metadata
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
            pass
        return write_synthetic_thumos(root, size=size, seed=seed, version=version, heterogeneity=heterogeneity)


def is_current(root: str | Path, metadata: dict, version: int, size: str, seed: int, heterogeneity: float) -> bool:
    """Whether the surrogate at ``root`` (its ``synthetic.json`` read as ``metadata``) is the one this package
    would write for these arguments: same arguments, current :data:`BYTES_REVISION`, and the files' fingerprint and
    the truth's digest equal to those stored when they were written (:func:`surrogate_problems`: an edited or
    half-overwritten cache is not current)."""
    return ((metadata["generator_version"], metadata["size"], metadata["seed"], metadata["heterogeneity"])
            == (version, size, seed, float(heterogeneity))
            and metadata.get("bytes_revision") == BYTES_REVISION
            and not surrogate_problems(root, metadata))


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an exclusive lock on ``path`` (POSIX ``flock``; elsewhere no lock) for the block."""
    try:
        import fcntl
    except ImportError:  # Windows: one process at a time is the user's to ensure
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def truth_problems(metadata: dict, videos) -> list[str]:
    """What is wrong with the truth ``synthetic.json`` records for ``videos`` (names), as lines a person can act
    on; empty when every video has a usable entry: two finite reliabilities > 0, corrupted stretches
    ``[start, end, factor]`` with a finite factor in (0, 1], and (v4, v5) two lists of misleading stretches."""
    problems = []
    entries = metadata.get("videos") if isinstance(metadata, dict) else None
    if not isinstance(entries, dict):
        return [f"{METADATA_FILE} has no 'videos' table"]
    for video in videos:
        entry = entries.get(video)
        if not isinstance(entry, dict):
            problems.append(f"{video}: no entry in {METADATA_FILE}")
            continue
        reliability = entry.get("reliability")
        if not (isinstance(reliability, list) and len(reliability) == 2
                and all(_finite_number(value) and value > 0 for value in reliability)):
            problems.append(f"{video}: reliability must be two numbers > 0, got {reliability!r}")
        corruptions = entry.get("corruptions", [])
        if not (isinstance(corruptions, list) and all(
                isinstance(item, list) and len(item) == 3 and all(map(_finite_number, item)) and 0 < item[2] <= 1
                for item in corruptions)):
            problems.append(f"{video}: corruptions must be [start, end, factor] with 0 < factor <= 1")
        misleading = entry.get("misleading", [[], []])
        if not (isinstance(misleading, list) and len(misleading) == 2 and all(
                isinstance(stretches, list) and all(isinstance(item, list) and len(item) == 2
                                                    and all(map(_finite_number, item)) for item in stretches)
                for stretches in misleading)):
            problems.append(f"{video}: misleading must be two lists of [start, end] stretches")
    return problems


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def check_truth(metadata: dict, videos, root: str | Path = "") -> None:
    """Raise a ``ValueError`` naming every problem of :func:`truth_problems` (at most five) and the way out: a
    control that reads the truth must not train on a garbled one."""
    problems = truth_problems(metadata, videos)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"{Path(root) / METADATA_FILE}: {shown}. The controls read the surrogate's truth from this "
                         "file; write the surrogate again (python -m sac_minimal data synth) instead of editing it")


def step_reliability(metadata: dict, video: str, steps: int, fps: float) -> np.ndarray:
    """``[T, 2]`` the true (r_appearance, r_motion) at every feature step of one video: its per-video reliabilities,
    times the factor of the corrupted stretches covering the step."""
    entry = metadata.get("videos", {}).get(video)
    if entry is None:
        raise ValueError(f"{video} has no recorded reliability in synthetic.json; the controls need a surrogate "
                         "written by this package (python -m sac_minimal data synth)")
    frame_factor = corruption_factor(entry.get("corruptions", []), step_seconds_of(steps, fps))
    return np.asarray(entry["reliability"])[None, :] * frame_factor[:, None]


def reference_gates(metadata: dict, video: str, steps: int, fps: float) -> np.ndarray:
    """``[T, 2]`` the reference gate on (appearance, motion) at every step: inverse-variance weights,
    ``2 r_mod(t)^2 / (r_a^2 + r_m^2)``, with r_mod(t) the step's reliability (:func:`step_reliability`) and r_a, r_m
    the video's.

    A modality's noise has standard deviation proportional to 1 / r_mod(t), so its inverse variance is proportional
    to r_mod(t)^2: weighting each modality by it is how one would combine two noisy measurements of the same thing.
    The gate is a composed attention in SAC's own family (a per-video modality share times a per-frame factor:
    the corrupted stretches lower both modalities by f^2), normalised so that a video's two shares sum to 2 on its
    clean steps. It is a *reference*, not a ceiling: a gate multiplies a modality's signal and noise alike, so it
    cannot raise that modality's signal-to-noise ratio, and a learned attention may do better (notebook 10). At
    h = 0 every gate is 1 and the reference is SSAD itself."""
    reliability = step_reliability(metadata, video, steps, fps)
    video_reliability = np.asarray(metadata["videos"][video]["reliability"])
    return (2 * reliability ** 2 / (video_reliability ** 2).sum()).astype(np.float32)


def privileged_gates(metadata: dict, video: str, steps: int, fps: float) -> np.ndarray:
    """``[T, 2]`` the privileged control's weight on (appearance, motion) at every step: the true share of the step's
    energy that is clean content, m^2. In v4, m is 0 on a modality's misleading stretches (``misleading`` in
    ``synthetic.json``) and :func:`clean_share` of the corrupted stretches' factor elsewhere; in v3, m =
    :func:`clean_share` of the step's reliability. Not normalised across modalities: a misleading modality is turned
    down whatever the other does, and a clean step keeps its weight (1), so where the other modality carries the
    class too it can stand in. Training applies the weights around each video's mean feature
    (:data:`sac_minimal.lab.train.AROUND_MEAN`)."""
    entry = metadata.get("videos", {}).get(video)
    if entry is not None and "misleading" in entry:  # v4: 0 on a modality's misleading stretches
        seconds = step_seconds_of(steps, fps)
        frame = clean_share(corruption_factor(entry.get("corruptions", []), seconds))
        return np.stack([np.where(misleading_mask(stretches, seconds), 0.0, frame) ** 2
                         for stretches in entry["misleading"]], axis=1).astype(np.float32)
    return (clean_share(step_reliability(metadata, video, steps, fps)) ** 2).astype(np.float32)


def privileged_video_gates(metadata: dict, video: str, steps: int, fps: float) -> np.ndarray:
    """``[T, 2]`` the privileged control per video: every step of a video gets the mean over the video of
    :func:`privileged_gates` (one weight per modality per video)."""
    gates = privileged_gates(metadata, video, steps, fps).astype(np.float64)
    return np.repeat(gates.mean(axis=0, keepdims=True), len(gates), axis=0).astype(np.float32)


def _run_lengths(flags: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


DISTRACTOR_SMOOTHING = 9
"""Steps of the moving average applied before a distractor burst is detected (property 5)."""


def _distractor_projection(metadata: dict, world: SurrogateWorld, video, appearance: np.ndarray,
                           motion: np.ndarray, condition: str) -> np.ndarray:
    """``[T]`` projection of a video's unreliable modality on its distractor direction (for clean videos, on what
    the distractor of a look-alike video of its main class would be, as a control)."""
    main_class = np.bincount(video.labels, minlength=len(THUMOS14_CLASSES)).argmax() if len(video.labels) else 0
    if condition == "far_camera":
        return motion @ pan_direction(metadata["seed"], *parse_video_name(video.video), motion.shape[1])
    look_alike = metadata["videos"][video.video].get("look_alike_class") if metadata.get("videos") else None
    partner = CLASS_ID[look_alike] if look_alike else world.look_alike[main_class]
    return appearance @ world.appearance_prototypes[partner]


def _collect_bleed(bleed: dict, video, step_seconds: np.ndarray, inside: np.ndarray, near: np.ndarray,
                   world: SurrogateWorld, appearance: np.ndarray, motion: np.ndarray) -> None:
    """Append one video's class-prototype projections of its motion-class instances to ``bleed``: {modality:
    (inside the segments, 0.3-1 s outside them, background)}."""
    starts, ends = video.segments[:, 0], video.segments[:, 1]
    for label in np.unique(video.labels):
        if MODALITY_PREFERENCE[THUMOS14_CLASSES[label]] != "motion":
            continue
        own = video.labels == label
        first, last = starts[own], ends[own]
        inside_own = ((step_seconds[:, None] >= first) & (step_seconds[:, None] <= last)).any(axis=1)
        band = ((((step_seconds[:, None] >= first - 1.0) & (step_seconds[:, None] <= first - 0.3))
                 | ((step_seconds[:, None] >= last + 0.3) & (step_seconds[:, None] <= last + 1.0))).any(axis=1)
                & ~inside)
        for modality, stream, prototypes in (("appearance", appearance, world.appearance_prototypes),
                                             ("motion", motion, world.motion_prototypes)):
            projection = stream @ prototypes[label]
            bleed[modality][0].append(projection[inside_own])
            bleed[modality][1].append(projection[band])
            bleed[modality][2].append(projection[~near])


def _bleed_fraction(inside_values: list, band_values: list, background_values: list) -> float:
    """The background-subtracted projection just outside the segments as a fraction of the one inside."""
    background = np.concatenate(background_values).mean()
    return float((np.concatenate(band_values).mean() - background)
                 / (np.concatenate(inside_values).mean() - background))


def measure_surrogate_properties(root: str | Path, split: str = "train") -> dict:
    """Measure properties 3-5 of the module docstring on a written surrogate (properties 1-2 need a probe:
    :func:`sac_minimal.data.probe.modality_probe`).

    Returns:
        ``norm_ratio``: {modality: mean L2 norm of action steps / of background steps} (property 3).
        ``bleed``: {modality: for motion classes, the class-prototype projection 0.3-1 s outside the segments,
        background-subtracted, as a fraction of the projection inside} (property 4: ~1 appearance, ~0 motion).
        ``distractors``: {condition: (fraction of background steps whose projection on the distractor direction,
        averaged over 9 steps, exceeds half its amplitude, mean run length in steps)} for the unreliable modality
        (property 5).
    """
    from sac_minimal.data.thumos14 import load_annotations, load_video_features

    metadata = read_synthetic_metadata(root)
    annotations = load_annotations(root, exclude=())
    feature_format = FeatureFormat.from_root(root)
    world = make_world(metadata["seed"], feature_format.channels_per_modality,
                       world_shared_weight(metadata["generator_version"]))
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
        _collect_bleed(bleed, video, step_seconds, inside, near, world, appearance, motion)
        condition = metadata["conditions"][video.video]
        projection = _distractor_projection(metadata, world, video, appearance, motion, condition)
        # A 9-step (about 1.2 s) moving average: a burst of 1-4 s survives it, white noise (v2's 1 / r) does not.
        smoothed = np.convolve(projection, np.ones(DISTRACTOR_SMOOTHING) / DISTRACTOR_SMOOTHING, mode="same")
        exceeds = smoothed[~near] > DISTRACTOR_AMPLITUDE / 2
        distractor_steps[condition][0].append(exceeds)
        distractor_steps[condition][1].extend(_run_lengths(exceeds).tolist())
    norm_ratio = {name: float(np.concatenate(sums[f"action_{suffix}"]).mean()
                              / np.concatenate(sums[f"background_{suffix}"]).mean())
                  for name, suffix in (("appearance", "a"), ("motion", "m"))}
    bleed_fraction = {modality: _bleed_fraction(*values) for modality, values in bleed.items()}
    distractors = {condition: (float(np.concatenate(flags).mean()) if flags else float("nan"),
                               float(np.mean(runs)) if runs else 0.0)
                   for condition, (flags, runs) in distractor_steps.items()}
    return {"norm_ratio": norm_ratio, "bleed": bleed_fraction, "distractors": distractors}
