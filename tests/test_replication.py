"""Conclusions that replicate: worlds with every class covered, the heterogeneity dose, matched starts, Eq. (3) as
written, Holm's adjustment, tests across worlds, and hypotheses declared before results."""

import json

import numpy as np
import pytest
import torch
from scipy import stats

from sac_minimal.lab.config import profile
from sac_minimal.data.synthetic import (
    SIZES,
    corruption_factor,
    read_synthetic_metadata,
    reference_gates,
    step_reliability,
)
from sac_minimal.data.thumos14 import THUMOS14_CLASSES, FeatureFormat, load_annotations, load_video_features
from sac_minimal.lab.experiments import claim_grid
from sac_minimal.lab.tables import grid_definition, PAPER_GAIN, summarize_grid, world_tests
from sac_minimal.lab.hypotheses import CONFIRMATORY_WORLDS, DEVELOPMENT_WORLDS, Hypothesis, judge
from sac_minimal.sac import smoothness_loss
from sac_minimal.lab.significance import holm, mean_with_interval, simultaneous_interval
from sac_minimal.lab.train import Detector
from sac_minimal.lab.variants import EXPERIMENTS


@pytest.mark.parametrize("seed", [0, 4, 11, 12345])
def test_every_class_has_training_and_test_instances_in_every_world(surrogates, seed):
    annotations = load_annotations(surrogates(seed), exclude=())
    for split, least in (("train", 3), ("test", 2)):
        counts = np.zeros(len(THUMOS14_CLASSES), dtype=int)
        for video in annotations.split(split):
            np.add.at(counts, video.labels, 1)
        assert counts.min() >= least, f"world {seed}, {split}: {dict(zip(THUMOS14_CLASSES, counts))}"


def test_worlds_are_frozen_and_apart():
    assert not set(DEVELOPMENT_WORLDS) & set(CONFIRMATORY_WORLDS)
    assert len(CONFIRMATORY_WORLDS) >= 5
    for experiment in EXPERIMENTS.values():
        assert not set(experiment.worlds) & set(DEVELOPMENT_WORLDS), experiment.title


def test_heterogeneity_scales_reliability_and_nothing_else(surrogates):
    null, half, full = (read_synthetic_metadata(surrogates(0, h)) for h in (0.0, 0.5, 1.0))
    annotations = [json.loads((surrogates(0, h) / "annotations" / "thumos14.json").read_text())["database"]
                   for h in (0.0, 1.0)]
    assert annotations[0] == annotations[1]  # the same videos, classes and segments
    for name, entry in full["videos"].items():
        r_full = np.array(entry["reliability"])
        assert null["videos"][name]["reliability"] == [1.0, 1.0]
        assert np.allclose(half["videos"][name]["reliability"], np.sqrt(r_full), atol=2e-4)  # r ** 0.5
        assert all(factor == 1.0 for *_, factor in null["videos"][name]["corruptions"])
        for (*_, f_half), (*_, f_full) in zip(half["videos"][name]["corruptions"], entry["corruptions"]):
            assert f_half == pytest.approx(np.sqrt(f_full), abs=2e-4)
    # at h = 0 a far-camera video's motion is as clean as a clean video's, at h = 1 much noisier
    root = surrogates(0, 0.0)
    feature_format = FeatureFormat.from_root(root)
    spread = {}
    for h in (0.0, 1.0):
        metadata, root = read_synthetic_metadata(surrogates(0, h)), surrogates(0, h)
        for condition in ("clean", "far_camera"):
            videos = [name for name, value in metadata["conditions"].items() if value == condition][:6]
            spread[h, condition] = np.mean([np.diff(feature_format.split(np.asarray(
                load_video_features(root, name, feature_format)))[1], axis=0).std() for name in videos])
    assert spread[0.0, "far_camera"] == pytest.approx(spread[0.0, "clean"], rel=0.1)
    assert spread[1.0, "far_camera"] > 2.5 * spread[1.0, "clean"]


def test_reference_gates_are_inverse_variance_weights(surrogates):
    metadata = read_synthetic_metadata(surrogates(0))
    name, entry = next((name, entry) for name, entry in metadata["videos"].items()
                       if entry["condition"] == "far_camera" and entry["corruptions"])
    steps, fps = 400, 30.0
    gates = reference_gates(metadata, name, steps, fps)
    r_a, r_m = entry["reliability"]
    factor = corruption_factor(entry["corruptions"], (4 * np.arange(steps) + 8) / fps)
    expected = 2 * np.stack([r_a * factor, r_m * factor], axis=1) ** 2 / (r_a ** 2 + r_m ** 2)
    assert np.allclose(gates, expected, rtol=1e-5)
    assert np.allclose(step_reliability(metadata, name, steps, fps)[:, 0], r_a * factor)
    clean = factor == 1
    assert np.allclose(gates[clean].sum(1), 2)  # a video's two shares sum to 2 on clean steps
    assert gates[clean, 0].mean() > 1.8  # far camera: appearance carries almost all the weight
    null = read_synthetic_metadata(surrogates(0, 0.0))
    assert np.all(reference_gates(null, name, steps, fps) == 1)  # h = 0: the reference is SSAD itself


def test_matched_starts_composed_and_official_sac_share_every_layer_but_the_ot_branch():
    config = profile("quick", device="cpu", seed=7)
    official = Detector(config, 64, 64).state_dict()
    composed = Detector(config.replace(sac_changes=(("use_ot", False),)), 64, 64).state_dict()
    ssad = Detector(config.replace(model="ssad"), 64, 64).state_dict()
    ot_only = {name for name in official if name.startswith("sac.structure_matrix.")}
    assert ot_only and set(official) - set(composed) == ot_only
    for name, value in composed.items():
        assert torch.equal(value, official[name]), name
    for name, value in ssad.items():  # SSAD's layers start equal in SSAD and in SSAD+SAC (same input width)
        assert torch.equal(value, official[name]), name
    other_seed = Detector(config.replace(seed=8), 64, 64).state_dict()
    assert not torch.equal(other_seed["host.base.0.weight"], official["host.base.0.weight"])


def test_smoothness_max_pools_the_modalities_before_the_difference():
    """Eq. (3): s^f = max over modalities first, then d_t = s^f_{t+1} - s^f_t. Here the two rows swap places at
    every step, so s^f is constant (no change at all) while each row alone jumps by 0.8."""
    structure = torch.tensor([[[0.9, 0.1, 0.9, 0.1, 0.9], [0.1, 0.9, 0.1, 0.9, 0.1]]])
    eta = 1.0  # keep every difference: q is their mean
    assert smoothness_loss(structure, eta, "max", "signed").item() == pytest.approx(0.0, abs=1e-6)
    # the other order (differences per modality, then the maximum) would see a jump of 0.8 at every step
    differences_first = structure.diff(dim=-1).amax(1).mean()
    assert differences_first.item() == pytest.approx(0.8)
    ramp = torch.tensor([[[0.0, 0.1, 0.2, 0.3], [0.0, 0.0, 0.0, 0.0]]])  # s^f rises by 0.1 per step
    assert smoothness_loss(ramp, eta, "max", "signed").item() == pytest.approx(-np.log(1 - 0.1), rel=1e-5)
    official = smoothness_loss(structure, eta, "sum", "absolute")  # the official code: sum, |difference|
    assert official.item() == pytest.approx(0.0, abs=1e-6)  # the rows sum to 1 at every step


def test_holm_matches_a_reference_implementation():
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    rng = np.random.default_rng(0)
    for count in (1, 3, 17):
        p_values = rng.uniform(0, 0.2, count)
        assert np.allclose(holm(p_values), multipletests(p_values, method="holm")[1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.2])


def _cells(values: dict) -> dict:
    """``{variant: {h: {world: mean}}}`` -> the shape of :func:`world_means` for one metric."""
    return {name: {h: {world: {"mean": {"Avg 0.1:0.7": value}} for world, value in by_world.items()}
                   for h, by_world in by_h.items()} for name, by_h in values.items()}


def test_tests_use_the_world_as_the_unit_and_adjust_within_the_table():
    grid = {"worlds": [3, 4, 5, 6], "heterogeneities": [0.0, 1.0], "comparisons": [["a", "b"]],
            "trends": [["a", "b"]]}
    a = {"0": {"3": 0.30, "4": 0.25, "5": 0.28, "6": 0.31}, "1": {"3": 0.30, "4": 0.25, "5": 0.28, "6": 0.31}}
    b = {"0": {"3": 0.30, "4": 0.26, "5": 0.27, "6": 0.31}, "1": {"3": 0.34, "4": 0.27, "5": 0.33, "6": 0.34}}
    tests = world_tests(_cells({"a": a, "b": b}), grid)
    at_one = tests["b vs a, h=1"]
    differences = [b["1"][world] - a["1"][world] for world in ("3", "4", "5", "6")]
    assert at_one["world_differences"] == pytest.approx(differences)
    assert at_one["p"] == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)
    interval = stats.t.interval(0.95, 3, loc=np.mean(differences), scale=stats.sem(differences))
    assert (at_one["low"], at_one["high"]) == pytest.approx(interval)
    trend = tests["b vs a, trend over h"]  # slope over h = 0 -> 1 is the difference of differences
    assert trend["world_differences"] == pytest.approx(
        [differences[i] - (b["0"][w] - a["0"][w]) for i, w in enumerate(("3", "4", "5", "6"))])
    assert [test["p_holm"] for test in tests.values()] == pytest.approx(holm([test["p"] for test in tests.values()]))
    # the table's simultaneous interval: Bonferroni's over its tests (2 h + 1 trend)
    family = len(tests)
    wide = stats.t.interval(1 - 0.05 / family, 3, loc=np.mean(differences), scale=stats.sem(differences))
    assert (at_one["low_adjusted"], at_one["high_adjusted"]) == pytest.approx(wide)
    assert at_one["low_adjusted"] < at_one["low"] and at_one["high_adjusted"] > at_one["high"]
    assert at_one["excludes_paper_gain"] == (wide[1] < PAPER_GAIN)


def test_a_simultaneous_interval_that_excludes_zero_implies_a_holm_rejection():
    rng = np.random.default_rng(1)
    for _ in range(200):
        family = [rng.normal(rng.uniform(-0.02, 0.04), 0.02, 6) for _ in range(5)]
        adjusted = holm([mean_with_interval(values)["p"] for values in family])
        for values, p_holm in zip(family, adjusted):
            low, high = simultaneous_interval(values, len(family))
            if low > 0 or high < 0:
                assert p_holm < 0.05


def test_a_hypothesis_is_judged_from_its_adjusted_test():
    greater = Hypothesis("H", "b beats a", "a", "b", "greater")
    assert judge(greater, {"mean": 0.02, "low": 0.01, "high": 0.03, "p_holm": 0.01}) == "supported"
    assert judge(greater, {"mean": -0.02, "low": -0.03, "high": -0.01, "p_holm": 0.01}) == "contradicted"
    assert judge(greater, {"mean": 0.02, "low": -0.01, "high": 0.05, "p_holm": 0.2}) == "not shown"
    null = Hypothesis("H0", "no difference", "a", "b", "zero")
    assert judge(null, {"mean": 0.0, "low": -0.01, "high": 0.01, "p_holm": 1.0}) == "consistent"
    # an interval that excludes 0 before the adjustment is not enough to contradict it after
    assert judge(null, {"mean": 0.02, "low": 0.004, "high": 0.035, "p_holm": 0.36}) == "consistent"
    assert judge(null, {"mean": 0.02, "low": 0.01, "high": 0.03, "p_holm": 0.01}) == "contradicted"
    assert mean_with_interval([0.020, 0.021, 0.022])["low"] > 0


def test_hypotheses_are_declared_before_results_and_a_record_without_them_refuses_to_summarise(tmp_path):
    experiment = EXPERIMENTS["table1"]
    base = profile("quick")
    definition = grid_definition(experiment, base, CONFIRMATORY_WORLDS, experiment.heterogeneities, range(4))
    claim_grid(tmp_path, definition)  # what the grid writes before its first run
    written = json.loads((tmp_path / "grid.json").read_text())
    assert [entry["name"] for entry in written["hypotheses"]] == [h.name for h in experiment.hypotheses]
    assert written["primary"] and written["worlds"] == list(CONFIRMATORY_WORLDS)
    claim_grid(tmp_path, definition)  # a shard of the same grid agrees
    with pytest.raises(ValueError, match="another grid"):
        claim_grid(tmp_path, {**definition, "seeds": [0, 1]})
    with pytest.raises(ValueError, match="declares no hypotheses"):
        summarize_grid([], {**definition, "hypotheses": []})


def test_every_experiment_tests_what_it_declares():
    for name, experiment in EXPERIMENTS.items():
        assert experiment.hypotheses and experiment.primary, name
    table1 = EXPERIMENTS["table1"]
    assert table1.heterogeneities == (0.0, 0.5, 1.0) and table1.seeds >= 4 and len(table1.worlds) >= 5
    assert set(table1.variants) == {"ssad", "ssad_theta", "reference", "headroom", "privileged", "composed", "sac",
                                    "light_theta", "sac_stabilised"}
    # both regimes' Table I hold the same rows, but for the reference gate, which is v3's alone
    assert set(table1.variants) - set(EXPERIMENTS["table1_v4"].variants) == {"reference"}
    assert SIZES["quick"].train_videos >= 2 * len(THUMOS14_CLASSES)


def test_only_the_tests_the_hypotheses_name_are_adjusted_together():
    grid = {"worlds": [3, 4, 5, 6], "heterogeneities": [0.0, 1.0], "comparisons": [["a", "b"], ["a", "c"]],
            "trends": [], "hypotheses": [{"baseline": "a", "candidate": "b", "heterogeneity": 1.0},
                                         {"baseline": "a", "candidate": "c", "heterogeneity": 1.0}]}
    rng = np.random.default_rng(3)
    values = {name: {h: dict(zip(("3", "4", "5", "6"), rng.uniform(0.2, 0.4, 4))) for h in ("0", "1")}
              for name in "abc"}
    tests = world_tests(_cells(values), grid)
    family = ["b vs a, h=1", "c vs a, h=1"]
    assert [tests[key]["p_holm"] for key in family] == pytest.approx(holm([tests[key]["p"] for key in family]))
    for key in ("b vs a, h=0", "c vs a, h=0"):  # named by no hypothesis: reported, not adjusted, no verdict word
        assert np.isnan(tests[key]["p_holm"]) and tests[key]["word"] == "exploratory"
    # adding an exploratory comparison leaves the family's adjusted p-values as they were
    wider = world_tests(_cells({**values, "d": values["c"]}),
                        {**grid, "comparisons": grid["comparisons"] + [["b", "d"]]})
    assert [wider[key]["p_holm"] for key in family] == [tests[key]["p_holm"] for key in family]


def test_with_one_dataset_the_seeds_are_the_units():
    """Real THUMOS14 is one dataset: its table tests the matched seeds, paired."""
    grid = {"worlds": [0], "seeds": [0, 1, 2], "heterogeneities": [1.0], "comparisons": [["a", "b"]], "trends": []}
    per_seed = {"a": [0.30, 0.32, 0.31], "b": [0.33, 0.36, 0.32]}
    cells = {name: {"1": {"0": {"per_seed": {"Avg 0.1:0.7": values}}}} for name, values in per_seed.items()}
    test = world_tests(cells, grid)["b vs a, h=1"]
    assert test["world_differences"] == pytest.approx([0.03, 0.04, 0.01])
    assert test["p"] == pytest.approx(stats.ttest_rel(per_seed["b"], per_seed["a"]).pvalue)


def test_two_processes_claiming_a_grid_at_once_never_read_a_half_written_file(tmp_path):
    """Shards start together: the second must see the first's grid.json whole (or create it), never empty."""
    import threading

    definition = grid_definition(EXPERIMENTS["table1"], profile("quick"), CONFIRMATORY_WORLDS, (1.0,), range(2))
    errors = []

    def claim():
        try:
            claim_grid(tmp_path, definition)
        except ValueError as error:
            errors.append(error)

    for _ in range(20):
        for path in tmp_path.iterdir():
            path.unlink()
        threads = [threading.Thread(target=claim) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors and json.loads((tmp_path / "grid.json").read_text())["seeds"] == [0, 1]
    assert [path.name for path in tmp_path.iterdir()] == ["grid.json"]  # no temporary file left


# ------------------------------------------------------------------------------------- worlds are real or refused


def test_one_dataset_is_never_counted_as_two_worlds(tmp_path):
    """A folder that is not a surrogate (real THUMOS14, --data DIR) is one dataset: more than one world or h on it is
    refused before any training, and so are a world or an h listed twice."""
    from conftest import TINY, write_tiny_dataset

    from sac_minimal.lab.config import profile
    from sac_minimal.lab.experiments import run_experiment
    from sac_minimal.lab.variants import EXPERIMENTS

    root = write_tiny_dataset(tmp_path / "real", TINY)
    base = profile("quick", data_root=str(root), device="cpu", epochs=1)
    for worlds, heterogeneities, message in (((3, 4), (1.0,), "one fixed dataset"),
                                             ((3,), (0.5, 1.0), "one fixed dataset"),
                                             ((3, 3), (1.0,), "world 3 is listed twice"),
                                             ((3,), (1.0, 1.0), "h 1 is listed twice")):
        with pytest.raises(ValueError, match=message):
            run_experiment(EXPERIMENTS["attention"], base, tmp_path / "record", checkpoints_dir=tmp_path / "runs",
                           worlds=worlds, heterogeneities=heterogeneities)
    assert not (tmp_path / "record" / "grid.json").exists() and not (tmp_path / "runs").exists()


def test_two_worlds_with_identical_data_are_refused(surrogates):
    from sac_minimal.lab.experiments import check_design

    root = surrogates(3, 1.0)
    with pytest.raises(ValueError, match="identical data"):
        check_design((3, 4), (1.0,), (0,), {(3, 1.0): (root, "synthetic"), (4, 1.0): (root, "synthetic")})
    check_design((3, 4), (1.0,), (0,), {(3, 1.0): (root, "synthetic"), (4, 1.0): (surrogates(4, 1.0), "synthetic")})


def test_differences_without_spread_are_not_testable_never_p_zero():
    from sac_minimal.lab.hypotheses import judge
    from sac_minimal.lab.significance import format_p, holm, mean_with_interval, significance_word

    same = mean_with_interval([0.0152, 0.0152, 0.0152])
    assert not same["testable"] and np.isnan(same["p"]) and same["mean"] == pytest.approx(0.0152)
    assert mean_with_interval([0.01, 0.02])["testable"]
    adjusted = holm([float("nan"), 0.01, 0.04])
    assert np.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.02, 0.04])  # a family of two, not three
    assert significance_word(adjusted[0]) == "not testable" and format_p(adjusted[0]) == "n/a"
    assert judge({"direction": "greater"}, {"mean": 0.0152, "p_holm": adjusted[0]}) == "not testable"


def test_on_real_data_the_rows_that_need_the_surrogates_truth_are_left_out(tmp_path, monkeypatch):
    """Chapter 13's command on a real-format folder runs to the end: the reference (which reads synthetic.json) is
    left out by code, with the reason, and the seeds are the replication unit."""
    from conftest import TINY, write_tiny_dataset

    from sac_minimal.lab.config import profile
    from sac_minimal.lab.experiments import run_experiment
    from sac_minimal.lab.tables import merge_grid
    from sac_minimal.lab.variants import EXPERIMENTS, Experiment

    small = Experiment(("ssad", "reference", "composed"), (("ssad", "reference"), ("ssad", "composed")),
                       "a small Table I on real data",
                       (Hypothesis("R1", "the reference helps", "ssad", "reference", "greater"),
                        Hypothesis("R2", "composed helps", "ssad", "composed", "greater")),
                       primary=(("ssad", "composed"),), seeds=2, worlds=(0,))
    monkeypatch.setitem(EXPERIMENTS, "small_real", small)
    root = write_tiny_dataset(tmp_path / "real", TINY)
    base = profile("quick", data_root=str(root), device="cpu", epochs=1, base_channels=16, main_channels=32)
    run_experiment(small, base, tmp_path / "record", checkpoints_dir=tmp_path / "runs")
    table = merge_grid(tmp_path / "record")
    assert set(table["variants"]) == {"ssad", "composed"} and "synthetic.json" in table["left_out"]["reference"]
    assert table["unit"] == "seed" and list(table["tests"]) == ["composed vs ssad, h=1"]
    assert [entry["name"] for entry in table["hypotheses"]] == ["R2"]


def test_a_primary_comparison_is_primary_where_its_hypothesis_tests_it():
    from sac_minimal.lab.tables import primary_tests

    grid = {"heterogeneities": [0.0, 1.0], "primary": [["a", "b"], ["a", "c"]]}
    tests = {"b vs a, h=0": {"word": "exploratory"}, "b vs a, h=1": {"word": "significant"},
             "c vs a, h=0": {"word": "exploratory"}, "c vs a, h=1": {"word": "exploratory"}}
    assert primary_tests(grid, tests) == ["b vs a, h=1", "c vs a, h=0", "c vs a, h=1"]
