"""Data: real THUMOS14 formats, the window recipe, the synthetic surrogate's properties, and bad inputs."""

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, write_tiny_dataset

from sac_minimal.lab.cli import main as cli
from sac_minimal.data.check import check_dataset
from sac_minimal.data.locate import reference_annotation_file
from sac_minimal.data.probe import modality_probe, segment_examples
from sac_minimal.data.synthetic import (
    MODALITY_PREFERENCE,
    SIZES,
    measure_surrogate_properties,
    read_synthetic_metadata,
    write_synthetic_thumos,
)
from sac_minimal.data.thumos14 import (
    DEFAULT_EXCLUDED_VIDEOS,
    THUMOS14_CLASSES,
    THUMOS14_REFERENCE_STATISTICS,
    FeatureFormat,
    annotation_statistics,
    load_annotations,
    load_video_features,
    parse_annotations,
    read_sac_window,
)
from sac_minimal.data.windows import (
    SacWindowFolder,
    WindowDataset,
    WindowSpec,
    cut_windows,
    segment_coverage,
    window_starts,
)

REAL_ANNOTATIONS = reference_annotation_file()



# ---------------------------------------------------------------- real annotation file


def test_window_counts_on_the_real_annotation_file():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        annotations = load_annotations(REAL_ANNOTATIONS, exclude=())
    train = cut_windows(annotations.split("train"), "train")
    test = cut_windows(annotations.split("test"), "test")
    assert abs(len(train) - 4770) <= 47.7 and abs(len(test) - 5150) <= 51.5
    assert abs(int(train.num_segments.sum()) - 9450) <= 94.5
    assert int(train.num_segments.max()) == 18
    # Notebook 06: attaching every overlapping segment to the same windows would give about 12,400 targets.
    any_overlap = sum(int((segment_coverage(train.begin_frame[train.video_index == index],
                                            video.segments_frames, 512) > 0).sum())
                      for index, video in enumerate(train.videos))
    assert abs(any_overlap - 12400) <= 124
    assert (train.num_segments > 0).all()
    assert train.segments.min() >= 0 and train.segments.max() <= 1


def test_real_statistics_match_the_published_ones():
    with pytest.warns(UserWarning, match="video_test_0000270"):
        annotations = load_annotations(REAL_ANNOTATIONS, exclude=())
    for split in ("train", "test"):
        assert annotation_statistics(annotations.split(split)) == THUMOS14_REFERENCE_STATISTICS[split]
    # The published figures before clipping: 3007 / 3358 instances, 11.6 / 12.8 hours.
    assert THUMOS14_REFERENCE_STATISTICS["train"]["instances per video (median, mean, max)"] == (8.0, 15.0, 128)
    assert THUMOS14_REFERENCE_STATISTICS["test"]["video seconds (min, median, mean, max)"][:3] == (15.0, 161.7, 216.8)
    assert annotations.clipped["video_test_0000270"] == 22
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = load_annotations(REAL_ANNOTATIONS)
    assert set(default.excluded) == {"video_test_0000270", "video_test_0001496"}  # 1292 is absent from the file
    assert len(default.split("test")) == 210 and not default.clipped.get("video_test_0000270")


# ---------------------------------------------------------------- formats


def test_both_annotation_layouts_give_the_same_records(tmp_path):
    write_tiny_dataset(tmp_path / "af", TINY)
    write_tiny_dataset(tmp_path / "sac", TINY, subset_names=("val", "test"))
    document = json.loads((tmp_path / "sac" / "annotations" / "thumos14.json").read_text())
    for entry in document["database"].values():
        for annotation in entry["annotations"]:
            annotation["idx"] = annotation.pop("label_id")
    actionformer = load_annotations(tmp_path / "af")
    official = parse_annotations(document)
    assert (actionformer.layout, official.layout) == ("actionformer", "sac_official")
    for ours, theirs in zip(actionformer.videos, official.videos):
        assert (ours.video, ours.split, ours.fps, ours.num_frames) == (theirs.video, theirs.split, theirs.fps,
                                                                       theirs.num_frames)
        np.testing.assert_array_equal(ours.segments, theirs.segments)
        np.testing.assert_array_equal(ours.labels, theirs.labels)
    first = actionformer.videos[0]
    assert first.split == "train" and first.num_frames == 1200
    np.testing.assert_allclose(first.segments_frames, [[60, 150], [600, 705]])


def test_channel_order_is_explicit():
    features = np.arange(8, dtype=np.float32).reshape(1, 8)
    appearance, motion = FeatureFormat(width=8, channel_order="rgb_flow").split(features)
    np.testing.assert_array_equal(appearance, [[0, 1, 2, 3]])
    appearance, motion = FeatureFormat(width=8, channel_order="flow_rgb").split(features)
    np.testing.assert_array_equal(appearance, [[4, 5, 6, 7]])
    np.testing.assert_array_equal(motion, [[0, 1, 2, 3]])
    with pytest.raises(ValueError, match="channel_order"):
        FeatureFormat(channel_order="rgb")


def test_official_npz_windows(tmp_path):
    """The official SAC .npz windows are read with the keys and units of the book's own windows."""
    folder = tmp_path / "val"
    folder.mkdir()
    rng = np.random.default_rng(1)
    spatial, temporal = rng.standard_normal((2, 1024, 128)).astype(np.float32)
    np.savez(folder / "video_validation_0000001_00128.npz", feat_spa=spatial, feat_tem=temporal, begin_frame=128,
             vid_name="video_validation_0000001", action=np.array([[0.25, 0.5, 1.0]]),
             cate_label_array=np.array([12]))
    window = read_sac_window(folder / "video_validation_0000001_00128.npz")
    assert window.begin_frame == 128 and window.video == "video_validation_0000001"
    item = SacWindowFolder(folder)[0]
    assert torch_equal(item["appearance"], spatial) and torch_equal(item["motion"], temporal)
    assert item["labels"][0].item() == 11 and item["num_segments"].item() == 1
    np.testing.assert_allclose(item["segments"][0].numpy(), [0.25, 0.5])
    np.savez(folder / "broken.npz", feat_spa=spatial)
    with pytest.raises(ValueError, match="missing"):
        read_sac_window(folder / "broken.npz")


def torch_equal(tensor, array):
    return np.array_equal(tensor.numpy(), array)


# ---------------------------------------------------------------- windows


def test_window_starts_regular_tail_and_short():
    np.testing.assert_array_equal(window_starts(1000, 128, 512), [0, 128, 256, 384, 488])
    np.testing.assert_array_equal(window_starts(1000, 256, 512), [0, 256, 488])
    np.testing.assert_array_equal(window_starts(512, 128, 512), [0])
    np.testing.assert_array_equal(window_starts(300, 128, 512), [0])


def test_keep_rule_and_targets(tmp_path):
    fps = 32.0  # 512 frames = 16 s, so window [0, 16) s covers frames [0, 512)
    videos = {"video_validation_0000001": ("train", 60.0, fps, [("HighJump", 14.0, 18.0)]),
              "video_validation_0000002": ("train", 60.0, fps, [("HighJump", 10.0, 20.5)])}
    write_tiny_dataset(tmp_path, videos, width=8)
    annotations = load_annotations(tmp_path)
    table = cut_windows(annotations.split("train"), "train")
    first = table.video_index == 0
    # [14, 18] s is 4 s long: windows starting at 0 s or 4 s hold 2 s or 4 s of it; only > 90 % counts.
    starts_seconds = table.begin_frame[first] / fps
    assert 0.0 not in starts_seconds and 4.0 in starts_seconds
    row = np.flatnonzero(first & (table.begin_frame == 128))[0]
    np.testing.assert_allclose(table.segments[row, 0], [(14 - 4) / 16, (18 - 4) / 16])
    assert table.labels[row, 0] == THUMOS14_CLASSES.index("HighJump") and table.labels[row, 1] == -1
    # [10, 20.5] s has 95 % inside the window starting at 4 s ([4, 20) s): a target there, clipped to 1.
    second = np.flatnonzero((table.video_index == 1) & (table.begin_frame == 128))
    assert len(second) == 1 and np.isclose(table.segments[second[0], 0, 1], 1.0)
    test_table = cut_windows(annotations.split("train"), "test")
    assert len(test_table) > 0 and (test_table.num_segments == 0).any()  # test keeps windows without targets


def test_dataset_pads_short_videos_and_gathers_batches(tmp_path):
    videos = {"video_validation_0000001": ("train", 10.0, 30.0, [("Shotput", 2.0, 4.0)]),
              "video_validation_0000002": ("train", 40.0, 30.0, [("Shotput", 10.0, 12.0)]),
              "video_test_0000001": ("test", 40.0, 30.0, [])}
    write_tiny_dataset(tmp_path, videos, width=16)
    for in_memory in (True, False):
        dataset = WindowDataset(tmp_path, "train", feature_format=FeatureFormat(width=16), in_memory=in_memory)
        short = load_video_features(tmp_path, "video_validation_0000001", FeatureFormat(width=16))
        item = dataset[0]
        assert item["appearance"].shape == (8, 128) and item["motion"].shape == (8, 128)
        steps = len(short)  # 75 steps, padded to 128 with the last one
        np.testing.assert_array_equal(item["appearance"][:, :steps].numpy(), short[:, :8].T)
        np.testing.assert_array_equal(item["motion"][:, steps:].numpy(),
                                      np.repeat(short[-1:, 8:].T, 128 - steps, axis=1))
        batch = dataset.batch(np.arange(len(dataset)))
        assert batch["appearance"].shape == (len(dataset), 8, 128)
        assert batch["video"][0] == "video_validation_0000001" and batch["fps"][0].item() == 30.0
        last = dataset[len(dataset) - 1]
        begin = last["begin_frame"].item() // 4
        full = load_video_features(tmp_path, "video_validation_0000002", FeatureFormat(width=16))
        np.testing.assert_array_equal(last["motion"].numpy(), full[begin:begin + 128, 8:].T)
    with pytest.raises(ValueError, match="shorter than one window"):
        WindowDataset(tmp_path, "train", feature_format=FeatureFormat(width=16),
                      spec=WindowSpec(short_videos="error"))


def test_batches_cover_every_window_once(tmp_path):
    write_tiny_dataset(tmp_path, TINY, width=8)
    dataset = WindowDataset(tmp_path, "test", feature_format=FeatureFormat(width=8))
    import torch

    seen = np.concatenate([batch["begin_frame"].numpy() for batch in
                           dataset.batches(2, shuffle=True, generator=torch.Generator().manual_seed(0))])
    np.testing.assert_array_equal(np.sort(seen), np.sort(dataset.table.begin_frame))


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_clear_errors(tmp_path):
    """Missing files, wrong widths, NaN and unknown labels raise errors that name the file or video."""
    root = write_tiny_dataset(tmp_path / "ok", TINY)
    (root / "i3d_features" / "video_test_0000001.npy").unlink()
    with pytest.raises(FileNotFoundError, match="video_test_0000001.*data check"):
        WindowDataset(root, "test")

    root = write_tiny_dataset(tmp_path / "narrow", TINY, width=1024)
    with pytest.raises(ValueError, match="width 1024, expected 2048"):
        load_video_features(root, "video_test_0000001", FeatureFormat())

    root = write_tiny_dataset(tmp_path / "nan", TINY, width=8)
    features = np.load(root / "i3d_features" / "video_test_0000001.npy")
    features[3, 2], features[4, 1] = np.nan, np.inf
    np.save(root / "i3d_features" / "video_test_0000001.npy", features)
    with pytest.raises(ValueError, match="1 NaN and 1 Inf"):
        load_video_features(root, "video_test_0000001", FeatureFormat(width=8))

    write_tiny_dataset(tmp_path / "label", {"video_test_0000002": ("test", 30.0, 30.0, [("Juggling", 1, 2)])})
    with pytest.raises(ValueError, match="unknown label 'Juggling'"):
        load_annotations(tmp_path / "label")

    write_tiny_dataset(tmp_path / "past", {"video_test_0000003": ("test", 30.0, 30.0, [("Diving", 28, 33),
                                                                                         ("Diving", 31, 32)])})
    with pytest.warns(UserWarning, match="video_test_0000003"):
        past = load_annotations(tmp_path / "past")
    np.testing.assert_allclose(past.videos[0].segments, [[28, 30]])
    assert past.clipped == {"video_test_0000003": 2}

    only_test = write_tiny_dataset(tmp_path / "empty", {"video_test_0000004": ("test", 30.0, 30.0, [])}, width=8)
    with pytest.raises(ValueError, match="train split is empty"):
        WindowDataset(only_test, "train", feature_format=FeatureFormat(width=8))

    with pytest.raises(FileNotFoundError, match="annotations/thumos14.json"):
        load_annotations(tmp_path / "nowhere")


# ---------------------------------------------------------------- data check


def test_data_check_on_a_real_format_folder(tmp_path, capsys):
    """data check exits 0 on a good folder and 1, naming each problem, on a broken one."""
    root = write_tiny_dataset(tmp_path / "good", TINY)
    assert cli(["data", "check", "--root", str(root)]) == 0
    output = capsys.readouterr().out
    assert "train: 2 videos, 4 instances" in output and "test: 1 videos" in output and "OK" in output
    assert "video_test_0001292" in output  # the exclusion list is printed

    root = write_tiny_dataset(tmp_path / "bad", TINY)
    (root / "i3d_features" / "video_validation_0000002.npy").unlink()
    features = np.load(root / "i3d_features" / "video_test_0000001.npy")
    features[0, 0] = np.nan
    np.save(root / "i3d_features" / "video_test_0000001.npy", features)
    assert cli(["data", "check", "--root", str(root)]) == 1
    output = capsys.readouterr().out
    assert "missing feature files (1): video_validation_0000002" in output
    assert "video_test_0000001" in output and "NaN or Inf" in output
    report = check_dataset(root)
    assert report.non_finite == {"video_test_0000001": {"nan": 1, "inf": 0}}
    assert cli(["data", "check", "--root", str(root), "--width", "1024"]) == 1
    assert "not 1024 wide" in capsys.readouterr().out


# ---------------------------------------------------------------- the synthetic surrogate


@pytest.fixture(scope="module")
def surrogate(surrogates):
    """The quick surrogate of world 0 (h = 1)."""
    return surrogates(seed=0)


def _digest(root):
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and path.name != "synthetic.json":  # it records the generation time
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_surrogate_is_deterministic_and_readable(surrogate, tmp_path):
    write_synthetic_thumos(tmp_path / "again", "quick", seed=0)
    write_synthetic_thumos(tmp_path / "other", "quick", seed=1)
    assert _digest(surrogate) == _digest(tmp_path / "again")
    assert _digest(surrogate) != _digest(tmp_path / "other")
    assert check_dataset(surrogate).ok
    annotations = load_annotations(surrogate)
    size = SIZES["quick"]
    assert len(annotations.split("train")) == size.train_videos and len(annotations.split("test")) == size.test_videos
    assert FeatureFormat.from_root(surrogate).width == 2 * size.channels_per_modality
    assert not any(video.video in DEFAULT_EXCLUDED_VIDEOS for video in annotations.videos)
    for video in annotations.videos:  # CliffDiving is always annotated as Diving too
        cliff = video.segments[video.labels == THUMOS14_CLASSES.index("CliffDiving")]
        diving = video.segments[video.labels == THUMOS14_CLASSES.index("Diving")]
        assert all((diving == segment).all(axis=1).any() for segment in cliff)


def test_surrogate_classes_prefer_a_modality_and_videos_vary(surrogate):
    annotations, feature_format = load_annotations(surrogate), FeatureFormat.from_root(surrogate)
    train = segment_examples(surrogate, annotations.split("train"), feature_format)
    test = segment_examples(surrogate, annotations.split("test"), feature_format)
    accuracy = modality_probe(train, test)
    preference = np.array([MODALITY_PREFERENCE[name] for name in THUMOS14_CLASSES])
    appearance_classes, motion_classes = preference == "appearance", preference == "motion"
    # Property 1: per-class probe accuracy favours the preferred modality.
    assert np.nanmean(accuracy["appearance"][appearance_classes] - accuracy["motion"][appearance_classes]) > 0.3
    assert np.nanmean(accuracy["motion"][motion_classes] - accuracy["appearance"][motion_classes]) > 0.2
    # Property 2 (each video's own reliability) is measured per step, where it acts: see the next test. Segment-level
    # probes average the noise away and mix classes, so their drop per condition depends on a world's class mix.


def test_surrogate_norms_bleed_and_structured_distractors(surrogate):
    measured = measure_surrogate_properties(surrogate)
    assert measured["norm_ratio"]["appearance"] > 1.05 and measured["norm_ratio"]["motion"] > 1.2  # property 3
    assert measured["bleed"]["appearance"] > 0.6 and abs(measured["bleed"]["motion"]) < 0.15  # property 4
    for condition in ("far_camera", "look_alike"):  # property 5: bursts many steps long, absent in clean videos
        fraction, run_length = measured["distractors"][condition]
        assert fraction > 0.05 and run_length > 5
    assert measured["distractors"]["clean"][0] < 0.02


def test_reliability_scales_noise_and_distractors_are_drawn_per_video(surrogates):
    """An unreliable modality's noise grows as 1 / r; look-alike videos draw their own confusable class, and videos
    have corrupted stretches."""
    root = surrogates(seed=0)
    metadata = read_synthetic_metadata(root)
    look_alikes = {entry["look_alike_class"] for entry in metadata["videos"].values()
                   if entry["condition"] == "look_alike"}
    assert len(look_alikes) > 3  # drawn per video, not one partner per class
    assert sum(len(entry["corruptions"]) for entry in metadata["videos"].values()) > 50
    annotations, feature_format = load_annotations(root), FeatureFormat.from_root(root)
    spread = {(condition, modality): [] for condition in ("clean", "far_camera", "look_alike") for modality in (0, 1)}
    for video in annotations.split("train"):
        condition = metadata["conditions"][video.video]
        streams = feature_format.split(np.asarray(load_video_features(root, video.video, feature_format)))
        for modality, stream in enumerate(streams):
            spread[condition, modality].append(np.diff(stream, axis=0).std())
    mean = {key: np.mean(values) for key, values in spread.items()}
    assert mean["far_camera", 1] > 2.5 * mean["clean", 1]  # far camera: noisy motion (r_m 0.15-0.3)
    assert mean["look_alike", 0] > 1.8 * mean["clean", 0]  # look-alike scene: noisy appearance (r_a 0.3-0.5)
    assert mean["far_camera", 0] == pytest.approx(mean["clean", 0], rel=0.25)  # the other modality as clean


def test_writing_the_surrogate_never_touches_other_files(tmp_path):
    real = tmp_path / "real"
    (real / "annotations").mkdir(parents=True)
    (real / "annotations" / "thumos14.json").write_text(json.dumps({"version": "Thumos14-30fps", "database": {}}))
    with pytest.raises(FileExistsError, match="did not write"):
        write_synthetic_thumos(real, "quick", seed=0)
    assert json.loads((real / "annotations" / "thumos14.json").read_text())["version"] == "Thumos14-30fps"
    stray = tmp_path / "stray"
    (stray / "i3d_features").mkdir(parents=True)
    np.save(stray / "i3d_features" / "video_test_0000001.npy", np.zeros((4, 8), dtype=np.float32))
    with pytest.raises(FileExistsError, match="video_test_0000001.npy"):
        write_synthetic_thumos(stray, "quick", seed=0)
    mine = tmp_path / "mine"
    write_synthetic_thumos(mine, "quick", seed=0)
    metadata = json.loads((mine / "synthetic.json").read_text())
    (mine / "synthetic.json").write_text(json.dumps({**metadata, "generator_version": 2}))  # an older generator's
    with pytest.raises(FileExistsError, match="generator version 2"):
        write_synthetic_thumos(mine, "quick", seed=0)
    (mine / "synthetic.json").write_text(json.dumps(metadata))
    write_synthetic_thumos(mine, "quick", seed=1, heterogeneity=0.5)  # its own earlier output may be replaced
    assert (read_synthetic_metadata(mine)["seed"], read_synthetic_metadata(mine)["heterogeneity"]) == (1, 0.5)


# ------------------------------------------------------------------ one world, one dataset, on every machine

PINNED_WORLDS = {
    (3, 3, 1.0): "b53eed97d7a44143994e65d5d830f21f87339c9728b98b5a6a1278e6a59d9d65",
    (3, 0, 0.5): "edd75ee0007751bcc635b139342b7d2a7df2c1e8ecd1a065063af214cc3afef3",
    (4, 110, 1.0): "53bb01ab6c1860079e6935900382d3d0f045c50582236c3a0641f829156c9d7e",
    (4, 100, 0.5): "1d5cd1c0b4244f39ff85c2860587225c1cb6dab4e55dd7185c4beedd74f7909c",
}
"""(generator version, world, h) -> the dataset fingerprint of the quick surrogate: the bytes every machine writes."""

_FINGERPRINTS = """
import json, sys, tempfile
from sac_minimal.data.synthetic import write_synthetic_thumos
from sac_minimal.data.fingerprint import dataset_fingerprint
found = {}
for version, world, h in json.loads(sys.argv[1]):
    with tempfile.TemporaryDirectory() as folder:
        write_synthetic_thumos(folder, size="quick", seed=world, version=version, heterogeneity=h)
        found[f"{version} {world} {h}"] = dataset_fingerprint(folder)
print(json.dumps(found))
"""


def _numeric_environments() -> dict:
    """Environments that change numpy's numerics on this machine: OpenBLAS kernels, one BLAS thread, and numpy's
    vector code switched off (the dispatched instruction sets this CPU has)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    environments = {f"OPENBLAS_CORETYPE={kernel}": {"OPENBLAS_CORETYPE": kernel}
                    for kernel in ("Haswell", "SkylakeX", "Sandybridge", "Prescott")}
    environments["one BLAS thread"] = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    vector = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    if vector:
        environments["numpy without " + ", ".join(vector)] = {"NPY_DISABLE_CPU_FEATURES": " ".join(vector)}
    return environments


@pytest.mark.parametrize("name, variables", sorted(_numeric_environments().items()))
def test_a_world_is_the_same_bytes_under_every_numeric_environment(name, variables):
    """The surrogate does not depend on a BLAS summation order or on numpy's vector code: each pinned world is
    regenerated in a fresh process under another OpenBLAS kernel, thread count or instruction set, and is the
    same bytes (the records name these fingerprints)."""
    import os
    import subprocess
    import sys

    inherited = {key: value for key, value in os.environ.items()
                 if key not in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                "NPY_DISABLE_CPU_FEATURES")}
    done = subprocess.run([sys.executable, "-c", _FINGERPRINTS, json.dumps([list(key) for key in PINNED_WORLDS])],
                          capture_output=True, text=True, timeout=300, env={**inherited, **variables})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert {key: found[" ".join(map(str, key))] for key in PINNED_WORLDS} == PINNED_WORLDS, name


def test_the_pinned_worlds_are_written_here(tmp_path):
    """In this process too (the environment the tests run in)."""
    from sac_minimal.data.fingerprint import dataset_fingerprint

    for (version, world, h), expected in PINNED_WORLDS.items():
        write_synthetic_thumos(tmp_path / f"{version}_{world}_{h}", size="quick", seed=world, version=version,
                               heterogeneity=h)
        assert dataset_fingerprint(tmp_path / f"{version}_{world}_{h}") == expected


def test_a_stale_cached_surrogate_is_detected_and_written_again(tmp_path):
    """A cache written by an older revision of the generator, or whose files changed after they were written, is
    not used as if it were the dataset: ensure_synthetic_thumos writes it again."""
    from sac_minimal.data.fingerprint import dataset_fingerprint
    from sac_minimal.data.synthetic import BYTES_REVISION, ensure_synthetic_thumos, is_current

    root = tmp_path / "cache"
    metadata = ensure_synthetic_thumos(root, size="tiny", seed=2)
    fresh = dataset_fingerprint(root)
    assert metadata["bytes_revision"] == BYTES_REVISION and metadata["fingerprint"] == fresh
    feature = sorted((root / "i3d_features").glob("*.npy"))[0]
    values = np.load(feature)
    values[0, 0] += 1e-3  # one value, as another BLAS kernel would leave it
    np.save(feature, values)
    assert not is_current(root, read_synthetic_metadata(root), 3, "tiny", 2, 1.0)
    ensure_synthetic_thumos(root, size="tiny", seed=2)
    assert dataset_fingerprint(root) == fresh
    old = {**read_synthetic_metadata(root), "bytes_revision": BYTES_REVISION - 1}
    (root / "synthetic.json").write_text(json.dumps(old))
    assert not is_current(root, old, 3, "tiny", 2, 1.0)
    assert ensure_synthetic_thumos(root, size="tiny", seed=2)["bytes_revision"] == BYTES_REVISION


def test_portable_numerics_are_accurate():
    """The machine-independent exp, log, power and weighted sum agree with numpy's to a few units in the last place."""
    from sac_minimal.data.portable import exp, log, power, weighted_sum

    rng = np.random.default_rng(0)
    x = rng.uniform(-30, 30, 10_000)
    assert np.max(np.abs(exp(x) - np.exp(x)) / np.spacing(np.exp(x))) <= 2
    y = rng.uniform(1e-3, 50, 10_000)
    assert np.max(np.abs(log(y) - np.log(y)) / np.spacing(np.abs(np.log(y)))) <= 4
    assert np.max(np.abs(power(y, 0.7) - y ** 0.7) / np.spacing(y ** 0.7)) <= 16
    assert np.array_equal(power(y, 1.0), y) and np.array_equal(power(y, 0.0), np.ones_like(y))
    weights = (rng.random((50, 6)) * (rng.random((50, 6)) < 0.4)).astype(np.float32)
    vectors = rng.standard_normal((6, 8)).astype(np.float32)
    exact = weights.astype(np.float64) @ vectors.astype(np.float64)
    assert np.allclose(weighted_sum(weights, vectors), exact, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="> 0"):
        log(np.array([1.0, 0.0]))


def test_a_writer_killed_mid_write_does_not_block_the_next_run(tmp_path):
    """A kill during the automatic surrogate writing leaves ``.<name>.<random>.tmp`` files; the next run writes the
    surrogate again and removes them instead of refusing the folder as foreign."""
    from sac_minimal.data.synthetic import ensure_synthetic_thumos

    root = tmp_path / "cache"
    ensure_synthetic_thumos(root, size="tiny", seed=1)
    (root / "synthetic.json").unlink()  # killed before the metadata, written last, was in place
    leftovers = [root / "i3d_features" / ".synthetic_test_0000001.npy.k3j2.tmp", root / ".synthetic.json.x1.tmp",
                 root / "annotations" / ".thumos14.json.q9.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    assert ensure_synthetic_thumos(root, size="tiny", seed=1)["seed"] == 1
    assert not any(path.exists() for path in leftovers)
    (root / "i3d_features" / "notes.txt").write_text("mine")
    (root / "synthetic.json").unlink()
    with pytest.raises(FileExistsError, match="notes.txt"):
        ensure_synthetic_thumos(root, size="tiny", seed=1)
