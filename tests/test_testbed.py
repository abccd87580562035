"""The misleading regime (generator v4) and its positive controls: deterministic worlds with class coverage,
reliability hidden from the feature norm but learnable, controls that use the truth as specified, an acceptance
test decided before any attention model runs, and one test per hypothesis."""

import numpy as np
import pytest

from sac_minimal.data.probe import reliability_probe
from sac_minimal.data.synthetic import (
    CONDITIONS,
    privileged_gates,
    read_synthetic_metadata,
    write_synthetic_thumos,
)
from sac_minimal.data.thumos14 import THUMOS14_CLASSES, load_annotations
from sac_minimal.lab.hypotheses import acceptance, comparison_key
from sac_minimal.lab.variants import EXPERIMENTS, TRUTH_MODELS, VARIANTS


@pytest.fixture(scope="module")
def v4(tmp_path_factory):
    root = tmp_path_factory.mktemp("v4")
    write_synthetic_thumos(root / "a", "quick", seed=100, version=4, heterogeneity=1.0)
    return root / "a"


def test_v4_is_deterministic_and_covers_every_class(v4, tmp_path):
    write_synthetic_thumos(tmp_path / "b", "quick", seed=100, version=4, heterogeneity=1.0)
    for path in sorted((v4 / "i3d_features").glob("*.npy"))[:10]:
        assert path.read_bytes() == (tmp_path / "b" / "i3d_features" / path.name).read_bytes()
    annotations = load_annotations(v4, exclude=())
    for split in ("train", "test"):
        counts = np.bincount(np.concatenate([video.labels for video in annotations.split(split)]),
                             minlength=len(THUMOS14_CLASSES))
        assert counts.min() >= 3, (split, counts)


def test_in_v4_reliability_is_not_in_the_norm_but_is_learnable(v4):
    metadata = read_synthetic_metadata(v4)
    channels = 64
    norms = {condition: ([], []) for condition in CONDITIONS}
    for name, entry in metadata["videos"].items():
        features = np.load(v4 / "i3d_features" / f"{name}.npy")
        norms[entry["condition"]][0].append(np.linalg.norm(features[:, :channels], axis=1).mean())
        norms[entry["condition"]][1].append(np.linalg.norm(features[:, channels:], axis=1).mean())
    for modality in (0, 1):
        means = [np.mean(values[modality]) for values in norms.values()]
        assert max(means) / min(means) < 1.1, means  # v3: 3.2 vs 0.9 for motion in far-camera videos
    probe = reliability_probe(v4)
    assert probe["accuracy"] > probe["chance"] + 0.1, probe


def test_the_privileged_control_weights_a_hand_made_video_by_its_clean_energy_share():
    metadata = {"videos": {"v": {"reliability": [1.0, 0.2], "corruptions": [[0.0, 1.0, 0.5]]}}}
    gates = privileged_gates(metadata, "v", steps=20, fps=30.0)  # steps centred at (4 i + 8) / 30 s
    inside = (4 * np.arange(20) + 8) / 30.0 <= 1.0
    np.testing.assert_allclose(gates[~inside], [[1.0, (0.2 / 0.8) ** 2]] * (~inside).sum(), rtol=1e-6)
    np.testing.assert_allclose(gates[inside], [[(0.5 / 0.8) ** 2, (0.1 / 0.8) ** 2]] * inside.sum(), rtol=1e-6)


def test_in_v4_the_privileged_control_removes_the_misleading_stretches():
    metadata = {"videos": {"v": {"reliability": [1.0, 0.2], "corruptions": [[0.0, 1.0, 0.5]],
                                 "misleading": [[], [[1.5, 2.0]]]}}}
    seconds = (4 * np.arange(20) + 8) / 30.0
    gates = privileged_gates(metadata, "v", steps=20, fps=30.0)
    corrupted, misleading = seconds <= 1.0, (seconds >= 1.5) & (seconds <= 2.0)
    np.testing.assert_allclose(gates[misleading, 1], 0.0)  # misleading motion: removed whatever the frame factor
    np.testing.assert_allclose(gates[corrupted, 0], (0.5 / 0.8) ** 2, rtol=1e-6)
    np.testing.assert_allclose(gates[~corrupted & ~misleading], 1.0)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.8])
def test_misleading_stretches_cover_the_share_their_reliability_asks_for(share):
    from sac_minimal.data.synthetic import _draw_stretches, misleading_mask

    seconds = np.linspace(0.0, 60.0, 6001)
    covered = misleading_mask(_draw_stretches(np.random.default_rng(0), 60.0, share), seconds).mean()
    assert share <= covered + 1e-3 and covered <= share + 4.0 / 60.0  # one stretch past the target at most


def test_a_weight_around_the_mean_leaves_the_videos_mean_in_place_of_a_removed_step(v4):
    from sac_minimal.data.windows import WindowDataset

    windows = WindowDataset(v4, "test")
    before = windows._bank.copy()
    gates = [np.stack([np.ones(steps), np.where(np.arange(steps) % 2 == 0, 0.0, 1.0)], axis=1)
             for steps in windows.feature_steps]
    windows.apply_step_gates(gates, around_mean=True)
    begin, end = 0, int(windows.feature_steps[0])
    channels = windows.feature_format.channels_per_modality
    motion_before, motion_after = before[begin:end, channels:], windows._bank[begin:end, channels:]
    np.testing.assert_allclose(motion_after[0::2], np.broadcast_to(motion_before.mean(0), motion_after[0::2].shape),
                               rtol=1e-5, atol=1e-6)
    # a weight of 1 leaves the step bit for bit as it was (at h = 0 the control is SSAD, run for run)
    np.testing.assert_array_equal(motion_after[1::2], motion_before[1::2])
    np.testing.assert_array_equal(windows._bank[:, :channels], before[:, :channels])


def _table(gains, p_holm):
    tests = {comparison_key("ssad", "privileged", h): {"mean": gain, "p_holm": p} for h, gain, p in
             zip((0.0, 0.5, 1.0), gains, p_holm)}
    return {"tests": tests}


@pytest.mark.parametrize("gains, p_holm, probes, failing", [
    ((0.0, 0.02, 0.05), (float("nan"), 0.01, 0.001), {"1": (0.8, 0.4), "2": (0.7, 0.5)}, []),
    ((0.0, 0.02, 0.05), (float("nan"), 0.01, 0.2), {"1": (0.8, 0.4)}, [0]),
    ((0.0, 0.06, 0.05), (float("nan"), 0.01, 0.001), {"1": (0.8, 0.4)}, [1]),
    ((0.01, 0.02, 0.05), (0.5, 0.01, 0.001), {"1": (0.8, 0.4)}, [2]),
    ((0.0, 0.02, 0.05), (float("nan"), 0.01, 0.001), {"1": (0.9, 0.4), "2": (0.45, 0.5)}, [3]),
], ids=["passes", "not significant", "no dose response", "a gain at h = 0", "not learnable in one world"])
def test_the_acceptance_test_checks_each_criterion(gains, p_holm, probes, failing):
    result = acceptance(_table(gains, p_holm), {world: {"accuracy": accuracy, "chance": chance}
                                                for world, (accuracy, chance) in probes.items()})
    assert [index for index, criterion in enumerate(result["criteria"]) if not criterion["passed"]] == failing
    assert result["passed"] == (not failing)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_no_hypothesis_reads_a_test_another_one_reads(name):
    tests = [hypothesis.test for hypothesis in EXPERIMENTS[name].hypotheses]
    assert len(tests) == len(set(tests)), tests


def test_the_v4_table_compares_attention_with_the_capacity_matched_baseline_and_ot_with_composed():
    table = EXPERIMENTS["table1_v4"]
    assert set(table.primary) == {("ssad_theta", "composed"), ("ssad_theta", "sac"), ("ssad", "light_theta"),
                                  ("ssad_theta", "sac_stabilised"), ("composed", "sac"), ("composed", "light_theta"),
                                  ("composed", "sac_stabilised")}
    assert not set(table.worlds) & set(table.development_worlds)
    assert not table.trends  # a trend over h = 0, 0.5, 1 with an exact zero at h = 0 repeats the h = 1 test


@pytest.mark.parametrize("name", ["attention", "components", "alternatives"])
def test_the_papers_ablations_on_v4_are_their_tables_with_table1_v4s_design(name):
    """Same rows, tests and hypotheses as on v3; Table I v4's worlds, seeds, data and acceptance guard, so that the
    rows the tables share are the same runs and none of them runs on a testbed that was not accepted."""
    paper, misleading, table1 = EXPERIMENTS[name], EXPERIMENTS[f"{name}_v4"], EXPERIMENTS["table1_v4"]
    for field in ("variants", "comparisons", "hypotheses", "primary", "heterogeneities"):
        assert getattr(misleading, field) == getattr(paper, field), field
    for field in ("config_changes", "seeds", "worlds", "development_worlds", "requires"):
        assert getattr(misleading, field) == getattr(table1, field), field
    assert misleading.requires == "acceptance_v4_quick" and misleading.heterogeneities == (1.0,)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_no_trend_repeats_a_test_of_the_same_table(name):
    """The truth-using rows equal SSAD at h = 0 by construction (every gate 1, no corruption to remove), so the
    trend of their difference over h = 0, 0.5, 1 is the h = 1 test counted again in Holm's family."""
    for baseline, candidate in EXPERIMENTS[name].trends:
        assert not {baseline, candidate} & set(TRUTH_MODELS), (name, baseline, candidate)


def test_each_attention_model_meets_a_baseline_that_sees_what_its_detector_sees():
    """SSAD+Θ's detector reads the official Θ's projection, as the composed, official and stabilised SAC's do; the
    light Θ only feeds the attention heads, so SAC with it reads the raw features, as SSAD does."""
    from sac_minimal.lab.config import profile

    for name in ("table1", "table1_v4"):
        for baseline, candidate in EXPERIMENTS[name].primary:
            if VARIANTS[baseline].model == "ssad_sac":
                continue  # OT against composed: the same attention model
            config = profile("quick", model=VARIANTS[candidate].model,
                             sac_preset=VARIANTS[candidate].sac_preset or "official",
                             sac_changes=VARIANTS[candidate].sac_changes).sac_config(64, 64)
            assert (config.modulate == "projected") == (baseline == "ssad_theta"), (name, baseline, candidate)


def test_attention_models_never_run_on_a_testbed_that_was_not_accepted(tmp_path, monkeypatch):
    """One guard on every path: a grid that requires the test, and any attention model's training on the regime
    (train, every grid, verify), are refused unless the acceptance record is valid (an acceptance record of that
    regime and size whose criteria its runs give) and passed; the advice names the repository's results/."""
    import json
    import shutil

    import sac_minimal.data.locate as locate
    from sac_minimal.lab.config import profile
    from sac_minimal.lab.acceptance import check_accepted, check_accepted_config
    from sac_minimal.lab.experiments import run_experiment
    from sac_minimal.lab.train import fit_runs

    real = locate.REPOSITORY / "results" / "acceptance_v4_quick"  # made with the book's first loss
    table = EXPERIMENTS["table1_v4"]
    first = profile("quick", device="cpu", loss="book_v1")
    attention = first.replace(model="ssad_sac", data_version=4, world=110)
    monkeypatch.setattr(locate, "REPOSITORY", tmp_path)  # a repository whose acceptance record we write
    with pytest.raises(ValueError, match=f"is not recorded: run cd {tmp_path} && python -m sac_minimal ablate"):
        check_accepted(table, first)
    with pytest.raises(ValueError, match="is not recorded"):
        check_accepted_config(attention)
    with pytest.raises(ValueError, match="is not recorded"):  # train, verify: before any training
        fit_runs([attention], [tmp_path / "run"])
    check_accepted_config(attention.replace(model="privileged"))  # the controls decide the test: never refused
    check_accepted_config(attention.replace(data_size="tiny"))  # dry runs of scripts: exempt
    recorded = tmp_path / "results" / table.requires / "acceptance.json"
    recorded.parent.mkdir(parents=True)
    for forged in ({"passed": False}, {"passed": True}, {"passed": "no"}, []):
        recorded.write_text(json.dumps(forged))
        with pytest.raises(ValueError, match="is not an acceptance record"):
            check_accepted_config(attention)
        with pytest.raises(ValueError, match="is not an acceptance record"):
            run_experiment(table, first, tmp_path / "record", checkpoints_dir=tmp_path / "runs")
    assert not (tmp_path / "record").exists()
    if not (real / "acceptance.json").exists():
        pytest.skip("results/acceptance_v4_quick is not recorded")
    shutil.rmtree(recorded.parent)
    shutil.copytree(real, recorded.parent)
    check_accepted(table, first)  # the real record, valid and passed: the grid may run
    check_accepted_config(attention)
    with pytest.raises(ValueError, match="is not recorded"):  # accepted for its own loss only
        check_accepted_config(attention.replace(loss="official"))
    stored = json.loads(recorded.read_text())
    stored["criteria"][0]["passed"] = not stored["criteria"][0]["passed"]
    recorded.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="is not what the record's runs give"):
        check_accepted_config(attention)


def test_a_confirmatory_table_refuses_development_worlds(tmp_path):
    from sac_minimal.lab.config import profile
    from sac_minimal.lab.experiments import check_confirmatory_worlds, run_experiment

    with pytest.raises(ValueError, match="worlds 100, 101 are development worlds"):
        run_experiment(EXPERIMENTS["table1_v4"], profile("quick", device="cpu", loss="book_v1"), tmp_path / "record",
                       checkpoints_dir=tmp_path / "runs", worlds=(100, 101, 110))
    with pytest.raises(ValueError, match="worlds 0 are development worlds"):
        check_confirmatory_worlds(EXPERIMENTS["table1"], (0, 3))
    check_confirmatory_worlds(EXPERIMENTS["acceptance_v4"], (100, 101))  # its own worlds


def test_a_tables_declared_data_version_is_never_overridden_silently(capsys):
    from sac_minimal.lab.cli import main as cli

    assert cli(["ablate", "attention_v4", "--data-version", "3", "--worlds", "110"]) == 2
    assert "attention_v4 is defined on generator v4; --data-version 3" in capsys.readouterr().err


# --- granularity: the privileged control per window and per video, and generator v5 -----------------------------


def test_the_control_per_window_gives_each_window_the_mean_of_its_steps_around_the_videos_mean(v4):
    from sac_minimal.data.windows import WindowDataset

    windows = WindowDataset(v4, "train")
    before = windows.batch(np.arange(len(windows)))
    # hand-made truth: appearance always clean, motion misleading on the first 64 steps of every video
    gates = [np.stack([np.ones(steps), (np.arange(steps) >= 64).astype(float)], axis=1)
             for steps in windows.feature_steps]
    window_gates = windows.apply_window_gates(gates)
    after = windows.batch(np.arange(len(windows)))
    first = np.flatnonzero((windows.table.begin_frame == 0) & (windows.feature_steps[windows.table.video_index]
                                                                >= 128))[0]
    np.testing.assert_allclose(window_gates[first], [1.0, 0.5])  # steps 0-127: half of them misleading
    assert torch_equal(after["appearance"], before["appearance"])  # a weight of 1: as it was
    video = windows.table.video_index[first]
    begin = int(np.concatenate([[0], np.cumsum(windows.feature_steps)])[video])
    channels = windows.feature_format.channels_per_modality
    mean = windows._bank[begin:begin + windows.feature_steps[video], channels:].mean(0)
    expected = mean[:, None] + 0.5 * (before["motion"][first].numpy() - mean[:, None])
    np.testing.assert_allclose(after["motion"][first].numpy(), expected, rtol=1e-5, atol=1e-6)
    from sac_minimal.data.windows import ResidentWindows  # what training and evaluation read: the same windows

    import torch

    appearance, motion, _, _ = ResidentWindows(windows, "cpu").batch(torch.arange(len(windows)))
    assert torch_equal(motion, after["motion"]) and torch_equal(appearance, after["appearance"])
    # one weight per window: the same step is weighted by each window that holds it
    late = windows.table.begin_frame // 4 >= 64
    np.testing.assert_allclose(window_gates[late & (windows.feature_steps[windows.table.video_index] > 200), 1], 1.0)


def torch_equal(first, second) -> bool:
    return bool((first == second).all())


def test_the_control_per_video_gives_every_step_the_videos_mean_weight():
    from sac_minimal.data.synthetic import privileged_video_gates

    metadata = {"videos": {"v": {"reliability": [1.0, 0.2], "corruptions": [], "misleading": [[], [[0.0, 1.0]]]}}}
    seconds = (4 * np.arange(20) + 8) / 30.0  # 6 of the 20 steps lie in the misleading second
    gates = privileged_video_gates(metadata, "v", steps=20, fps=30.0)
    np.testing.assert_allclose(gates, [[1.0, (seconds > 1.0).mean()]] * 20, rtol=1e-6)
    assert gates[0, 1] == pytest.approx(14 / 20)


@pytest.fixture(scope="module")
def v5(tmp_path_factory):
    root = tmp_path_factory.mktemp("v5")
    write_synthetic_thumos(root / "a", "quick", seed=200, version=5, heterogeneity=1.0)
    return root / "a"


def test_v5_misleads_for_whole_shots_and_shares_everything_else_with_v4(v5, tmp_path):
    from sac_minimal.data.synthetic import CORRUPTION_SECONDS, SHOT_SECONDS

    write_synthetic_thumos(tmp_path / "v4", "quick", seed=200, version=4, heterogeneity=1.0)
    shots, stretches = read_synthetic_metadata(v5), read_synthetic_metadata(tmp_path / "v4")
    assert (v5 / "annotations" / "thumos14.json").read_text().replace("v5", "v4") == \
        (tmp_path / "v4" / "annotations" / "thumos14.json").read_text()
    for metadata, (low, high) in ((shots, SHOT_SECONDS), (stretches, CORRUPTION_SECONDS)):
        lengths = [end - begin for entry in metadata["videos"].values() for modality in entry["misleading"]
                   for begin, end in modality]
        assert lengths and low - 1e-3 <= min(lengths) and max(lengths) <= high + 1e-3
    for name, entry in shots["videos"].items():  # the same conditions, reliabilities and corrupted stretches
        assert {key: entry[key] for key in ("condition", "reliability", "corruptions")} == \
            {key: stretches["videos"][name][key] for key in ("condition", "reliability", "corruptions")}


def test_v6_misleads_for_long_shots_while_the_other_stream_identifies_the_class_alone(tmp_path):
    from sac_minimal.data.synthetic import (LONG_SHOT_SECONDS, MISLEADING_REGIMES, MODALITY_PREFERENCE,
                                            THUMOS14_CLASSES, make_world, world_shared_weight)

    write_synthetic_thumos(tmp_path / "v6", "quick", seed=300, version=6, heterogeneity=1.0)
    metadata = read_synthetic_metadata(tmp_path / "v6")
    lengths = [end - begin for entry in metadata["videos"].values() for modality in entry["misleading"]
               for begin, end in modality]
    low, high = LONG_SHOT_SECONDS
    assert lengths and low - 1e-3 <= min(lengths) and max(lengths) <= high + 1e-3
    assert MISLEADING_REGIMES[6].synchronous_confuser and MISLEADING_REGIMES[6].other_amplitude == 1.0
    # In the modality that does not identify a group, v5's classes share a direction and v6's do not.
    preference = np.array([MODALITY_PREFERENCE[name] for name in THUMOS14_CLASSES])
    motion_group = np.flatnonzero(preference == "motion")
    for version, (lowest, highest) in ((5, (0.05, 1.0)), (6, (-1.0, 0.05))):
        appearance = make_world(300, 512, world_shared_weight(version)).appearance_prototypes[motion_group]
        cosines = (appearance @ appearance.T)[np.triu_indices(len(motion_group), 1)]
        assert lowest < cosines.mean() < highest, (version, cosines.mean())


def test_in_v5_the_probe_reads_each_windows_own_state_from_its_pooled_features(v5):
    from sac_minimal.data.probe import WINDOW_STATES, window_state

    assert [window_state(np.array(gates)) for gates in ([0.9, 0.6], [1.0, 0.1], [0.2, 0.4], [0.5, 0.5])] == \
        [0, 1, 2, 0]
    probe = reliability_probe(v5, per_window=True)
    assert set(probe["per_condition"]) == set(WINDOW_STATES)  # every state occurs among the test windows
    assert probe["accuracy"] > probe["chance"], probe
    by_video = reliability_probe(v5)
    assert probe["windows"] == by_video["windows"] and probe["per_condition"] != by_video["per_condition"]


@pytest.mark.parametrize("version", [5, 6])
def test_v5s_and_v6s_acceptance_tests_are_decided_by_the_control_per_window(version):
    from sac_minimal.lab.hypotheses import ACCEPTANCE_CONTROLS

    assert ACCEPTANCE_CONTROLS == {4: "privileged", 5: "privileged_window", 6: "privileged_window"}
    experiment = EXPERIMENTS[f"acceptance_v{version}"]
    assert dict(experiment.config_changes)["data_version"] == version
    assert set(experiment.worlds) <= set(experiment.development_worlds)
    assert experiment.primary == (("ssad", "privileged_window"),)
    assert all(VARIANTS[name].model in ("ssad", *TRUTH_MODELS) for name in experiment.variants)  # no attention
    tests = {comparison_key("ssad", "privileged_window", h): {"mean": gain, "p_holm": p}
             for h, gain, p in zip((0.0, 0.5, 1.0), (0.0, 0.02, 0.05), (float("nan"), 0.01, 0.001))}
    probes = {"200": {"accuracy": 0.8, "chance": 0.4}}
    assert acceptance({"tests": tests}, probes, control="privileged_window")["passed"]
    with pytest.raises(ValueError, match="privileged control at h = 0, 0.5 and 1"):
        acceptance({"tests": tests}, probes)  # read as v4's control: the per-step tests are missing
    weak = {**tests, comparison_key("ssad", "privileged_window", 1.0): {"mean": 0.05, "p_holm": 0.2}}
    assert not acceptance({"tests": weak}, probes, control="privileged_window")["passed"]


def test_table1_v5_meets_each_attention_model_with_its_capacity_matched_baseline():
    from sac_minimal.lab.config import profile
    from sac_minimal.sac import SAC

    table = EXPERIMENTS["table1_v5"]
    assert ("light_theta_baseline", "light_theta") in table.primary and ("ssad", "light_theta") not in \
        table.comparisons
    assert {(hypothesis.baseline, hypothesis.candidate, hypothesis.heterogeneity) for hypothesis in table.hypotheses
            if hypothesis.direction == "zero"} == {(baseline, candidate, 0.0) for baseline, candidate in
                                                    table.primary[:4]}
    base = profile("quick")
    light, matched = (VARIANTS[name].config(base, 0).sac_config(64, 64) for name in ("light_theta",
                                                                                     "light_theta_baseline"))
    assert (matched.attention, matched.use_ot, matched.theta_reduction) == ("none", False, light.theta_reduction)
    assert matched.output_channels == 128 + light.projected_channels  # the light Θ feeds the detector
    count = {name: sum(parameter.numel() for parameter in SAC(config).parameters())
             for name, config in (("light", light), ("matched", matched))}
    theta = sum(parameter.numel() for name, parameter in SAC(light).named_parameters() if name.startswith("theta"))
    assert count["matched"] == theta and count["light"] > theta  # the baseline keeps Θ, without attention heads
    import torch

    from sac_minimal.lab.train import Detector

    config = VARIANTS["light_theta_baseline"].config(base, 0)
    detector = Detector(config, 64, 64)
    appearance, motion = torch.randn(2, 64, 128), torch.randn(2, 64, 128)
    features = detector.sac(appearance, motion).features
    assert features.shape == (2, matched.output_channels, 128)  # raw features, then the light Θ's output
    torch.testing.assert_close(features[:, :128], torch.cat([appearance, motion], dim=1))
    assert detector(appearance, motion)[0].shape[0] == 2


def test_gates_of_the_wrong_shape_are_refused_by_both_granularities(v4):
    from sac_minimal.data.windows import WindowDataset

    windows = WindowDataset(v4, "test")
    wrong = [np.ones((steps, 3)) for steps in windows.feature_steps]
    for apply in (windows.apply_step_gates, windows.apply_window_gates):
        with pytest.raises(ValueError, match=r"gates of shape \(\d+, 3\), expected \(\d+, 2\)"):
            apply(wrong)
    with pytest.raises(ValueError, match="gate arrays for"):
        windows.apply_window_gates(wrong[:1])


def test_a_grid_is_refused_before_its_first_run_when_a_row_needs_an_acceptance_record_it_lacks(tmp_path, monkeypatch):
    """The guard judges every row of a grid at the size it will train before anything is claimed or trained: a
    Table I whose attention rows lack an acceptance record for their size trains none of its SSAD rows first (on a
    GPU that would spend the session before the refusal)."""
    from sac_minimal.lab import acceptance, experiments
    from sac_minimal.lab.config import profile

    monkeypatch.setenv("SAC_MINIMAL_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(experiments, "check_accepted", lambda experiment, base=None: None)
    monkeypatch.setattr(acceptance, "acceptance_record",
                        lambda config: "acceptance_v4_missing" if config.model == "ssad_sac" else None)
    base = profile("quick", data_size="tiny", epochs=1, base_channels=16, main_channels=32, device="cpu")
    with pytest.raises(ValueError, match="acceptance_v4_missing.*is not recorded"):
        experiments.run_experiment(EXPERIMENTS["table1_v4"], base, tmp_path / "record", worlds=(110, 111),
                                   heterogeneities=(1.0,), seeds=range(2), checkpoints_dir=tmp_path / "runs")
    assert not (tmp_path / "record" / "grid.json").exists() and not (tmp_path / "runs").exists()


def test_every_regime_with_an_acceptance_test_is_guarded_for_each_loss():
    """Before: ACCEPTANCE_VERSIONS was a hand-kept (4, 5), so attention models trained on generator v6, whose
    acceptance test did not pass. The regimes are read from the experiments that define an acceptance test."""
    from sac_minimal.lab.config import profile
    from sac_minimal.lab.acceptance import ACCEPTANCE_VERSIONS, check_accepted_config

    assert ACCEPTANCE_VERSIONS == tuple(sorted(int(name[len("acceptance_v"):]) for name in EXPERIMENTS
                                               if name.startswith("acceptance_v")))
    assert 6 in ACCEPTANCE_VERSIONS
    attention = profile("quick", model="ssad_sac", data_version=6, world=310, device="cpu")
    with pytest.raises(ValueError, match="did not pass"):
        check_accepted_config(attention.replace(loss="book_v1"))  # v6's test, with the loss it was made with
    with pytest.raises(ValueError, match="acceptance_v6_quick_official_loss.*is not recorded"):
        check_accepted_config(attention)


def test_a_generator_without_an_acceptance_test_is_guarded_by_default(monkeypatch):
    """Only generator v3 is exempt (its records predate the test); any other version, one whose acceptance
    experiment is missing included, trains attention models only after its test has passed."""
    from sac_minimal.data.synthetic import GENERATOR_VERSIONS
    from sac_minimal.lab import acceptance
    from sac_minimal.lab.config import profile

    assert set(acceptance.EXEMPT_VERSIONS) == {3}
    assert set(GENERATOR_VERSIONS) - set(acceptance.EXEMPT_VERSIONS) <= set(acceptance.ACCEPTANCE_VERSIONS)
    monkeypatch.setattr(acceptance, "ACCEPTANCE_VERSIONS", (4, 5))  # as if v6 had no acceptance experiment
    attention = profile("quick", model="ssad_sac", data_version=6, world=310, device="cpu")
    with pytest.raises(acceptance.NotAccepted, match="generator v6 has no acceptance test"):
        acceptance.check_accepted_config(attention)
    assert acceptance.acceptance_record(attention.replace(data_version=3, world=3)) is None
