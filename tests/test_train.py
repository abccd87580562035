"""Training runs, resume, the NaN guard, the t-tests, results with provenance, sharding."""

import json
import os

import numpy as np
import pytest
import torch
from scipy import stats

import sac_minimal.lab.train as train_module
from sac_minimal.lab.config import TrainConfig, profile
from sac_minimal.lab.experiments import parse_shard, run_experiment
from sac_minimal.lab.tables import format_table, merge_grid, summarize_grid
from sac_minimal.lab.hypotheses import Hypothesis
from sac_minimal.lab.significance import minimum_detectable_difference, paired_t_test, student_t_test
from sac_minimal.lab.train import RunResult, choose_device, fit
from sac_minimal.lab.variants import EXPERIMENTS, Experiment

SMALL_TABLE = Experiment(("ssad", "reference", "sac"), (("ssad", "reference"), ("ssad", "sac")), "a small Table I",
                         (Hypothesis("S1", "SAC beats SSAD", "ssad", "sac", "greater"),), primary=(("ssad", "sac"),),
                         seeds=2, worlds=(3, 4))


def without_times(metrics):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in metrics]


def test_config_round_trip_and_schedule():
    """Configs survive JSON, the learning rate decays after the listed epochs, batch size scales it."""
    config = profile("full", model="ssad_theta", sac_changes=(("eps", 0.05),))
    assert TrainConfig.from_json(config.to_json()) == config
    assert [config.learning_rate_at(epoch) for epoch in (1, 30, 31, 40)] == pytest.approx([1e-4, 1e-4, 1e-5, 1e-5])
    sac = config.sac_config(64, 64)
    assert sac.attention == "none" and not sac.use_ot and sac.projection and sac.eps == 0.05
    assert profile("full", model="ssad").sac_config(64, 64) is None
    larger = profile("full").with_batch_size(16)
    assert (larger.batch_size, larger.learning_rate) == (16, pytest.approx(4e-4))
    with pytest.raises(ValueError, match="allow-large-lr"):
        profile("quick").with_batch_size(100000)
    with pytest.warns(UserWarning, match="diverge"):
        assert profile("quick").with_batch_size(100000, allow_large_learning_rate=True).learning_rate == 12.5
    for bad in ({"world": -1}, {"world": 1.5}, {"heterogeneity": float("nan")}, {"heterogeneity": -0.5}):
        with pytest.raises(ValueError, match="world|heterogeneity"):
            profile("quick", **bad)
    with pytest.raises(ValueError, match="model must be one of"):
        profile("quick", model="ssad_plus")
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"modle": "ssad"})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            choose_device("cuda")


def test_training_reduces_the_loss(quick, tmp_path):
    result = fit(quick(model="ssad", epochs=3), tmp_path / "run")
    totals = [row["total"] for row in result.metrics]
    assert totals[-1] < totals[0]
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,lr,classification")
    assert 0 <= result.evaluation["Avg 0.1:0.7"] <= 1 and result.dataset["kind"] == "synthetic"
    assert RunResult.from_dict(json.loads((tmp_path / "run" / "result.json").read_text())).evaluation == \
        result.evaluation


def test_resume_after_interrupt_gives_identical_results(quick, tmp_path):
    config = quick(model="ssad_sac", epochs=3)
    straight = fit(config, tmp_path / "straight")
    assert fit(config, tmp_path / "interrupted", epoch_budget=2) is None
    checkpoint = torch.load(tmp_path / "interrupted" / "checkpoint.pt", weights_only=False)
    assert checkpoint["epoch"] == 2
    resumed = fit(config, tmp_path / "interrupted")
    assert without_times(resumed.metrics) == without_times(straight.metrics)
    assert resumed.evaluation == straight.evaluation
    with pytest.raises(ValueError, match="another config"):
        fit(config.replace(seed=9), tmp_path / "interrupted")


def break_loss_at_step_2(monkeypatch, term: str, value: float) -> None:
    """Make the training loop's loss term ``term`` (and so the total) non-finite at its second step."""
    real_loss = train_module.ssad_loss_runs
    calls = {"count": 0}

    def failing_loss(*args, **kwargs):
        losses = real_loss(*args, **kwargs)
        calls["count"] += 1
        if calls["count"] == 2:
            losses[term] = losses[term] * value
            losses["total"] = losses["total"] + losses[term]
        return losses

    monkeypatch.setattr(train_module, "ssad_loss_runs", failing_loss)


def test_non_finite_loss_stops_with_the_step_and_term(quick, tmp_path, monkeypatch):
    break_loss_at_step_2(monkeypatch, "overlap", float("nan"))
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 2: overlap=nan, total=nan"):
        fit(quick(model="ssad", epochs=1), tmp_path / "nan")
    saved = torch.load(tmp_path / "nan" / "nonfinite_state.pt", weights_only=False)
    assert saved["step"] == 2 and "model" in saved


def test_reading_losses_every_few_steps_changes_nothing_but_when_nan_is_seen(quick, tmp_path, monkeypatch):
    from sac_minimal.lab.train import fit_runs

    config = quick(model="ssad", epochs=1)
    every_step = fit_runs([config], [tmp_path / "every"], sync_every=1)[0]
    every_third = fit_runs([config], [tmp_path / "third"], sync_every=3)[0]
    assert without_times(every_third.metrics) == without_times(every_step.metrics)
    break_loss_at_step_2(monkeypatch, "classification", float("inf"))
    message = r"epoch 1, step 2: classification=inf, total=inf; the model \(weights as before step 3\)"
    with pytest.raises(FloatingPointError, match=message):
        fit_runs([config], [tmp_path / "late"], sync_every=3)
    saved = torch.load(tmp_path / "late" / "nonfinite_state.pt", weights_only=False)
    assert (saved["step"], saved["weights_before_step"]) == (2, 3)


def test_time_budget_stops_at_an_epoch_boundary(quick, tmp_path):
    config = quick(model="ssad", epochs=2)
    assert fit(config, tmp_path / "budget", time_budget_s=1e-3) is None
    assert torch.load(tmp_path / "budget" / "checkpoint.pt", weights_only=False)["epoch"] == 1
    assert [row["epoch"] for row in fit(config, tmp_path / "budget").metrics] == [1, 2]


@pytest.mark.skipif(bool(os.environ.get("ATEN_CPU_CAPABILITY")),
                    reason="ATEN_CPU_CAPABILITY forces other eager kernels, not another CPU: torch.compile's generated "
                           "code then fails inside its own kernel (an index error, with this package's code before "
                           "and after the change alike); on a CPU that is really of another type it compiles for it")
def test_compiled_step_trains_like_the_eager_step(quick, tmp_path):
    config = quick(model="ssad", epochs=1)
    eager = fit(config, tmp_path / "eager")
    compiled = fit(config, tmp_path / "compiled", compiled=True)
    assert compiled.extra["compiled"] is True and "compiled" not in eager.extra
    from sac_minimal.lab.records import LOSS_TOLERANCE, TERM_TOLERANCE

    for key in ("classification", "overlap", "localisation", "total"):
        # another kernel order, amplified over an epoch: within the spread measured across summation orders
        tolerance = LOSS_TOLERANCE.get(key, TERM_TOLERANCE)
        assert compiled.metrics[0][key] == pytest.approx(eager.metrics[0][key], rel=tolerance)
    assert compiled.evaluation["Avg 0.1:0.7"] == pytest.approx(eager.evaluation["Avg 0.1:0.7"], abs=0.01)


def test_t_tests_match_scipy():
    rng = np.random.default_rng(0)
    for sizes in ((6, 6), (3, 5), (10, 4)):
        first, second = rng.normal(0.5, 0.02, sizes[0]), rng.normal(0.52, 0.03, sizes[1])
        ours = student_t_test(first, second)
        reference = stats.ttest_ind(first, second, equal_var=True)
        assert ours["t"] == pytest.approx(reference.statistic, rel=1e-12)
        assert ours["p"] == pytest.approx(reference.pvalue, rel=1e-9)
        assert ours["dof"] == sum(sizes) - 2
    for size in (2, 3, 10):
        candidate, baseline = rng.normal(0.5, 0.02, size), rng.normal(0.52, 0.03, size)
        paired, reference = paired_t_test(candidate, baseline), stats.ttest_rel(candidate, baseline)
        assert paired["t"] == pytest.approx(reference.statistic, rel=1e-12)
        assert paired["p"] == pytest.approx(reference.pvalue, rel=1e-9)
        assert paired["dof"] == size - 1
    with pytest.raises(ValueError, match="at least two runs"):
        student_t_test([0.5], [0.4, 0.6])
    with pytest.raises(ValueError, match="at least two matched pairs"):
        paired_t_test([0.5], [0.4])


def test_minimum_detectable_difference_has_the_stated_power():
    """A true difference of one MDD is found by the paired test in about 80 % of simulated experiments."""
    rng = np.random.default_rng(1)
    seeds, spread = 10, 0.03
    detectable = minimum_detectable_difference(spread / np.sqrt(seeds), seeds - 1)
    differences = rng.normal(detectable, spread, (4000, seeds))
    found = stats.ttest_1samp(differences, 0.0, axis=1).pvalue < 0.05
    assert found.mean() == pytest.approx(0.8, abs=0.03)
    assert minimum_detectable_difference(spread / np.sqrt(40), 39) < detectable / 1.9  # 4x the seeds, ~half


def test_shard_and_merge_equal_the_unsharded_run(data_home, tmp_path, monkeypatch):
    monkeypatch.setitem(EXPERIMENTS, "small", SMALL_TABLE)  # records are checked against the code's experiments
    base = profile("quick", data_size="tiny", epochs=1, base_channels=16, main_channels=32, device="cpu")
    run_experiment(SMALL_TABLE, base, tmp_path / "whole", checkpoints_dir=tmp_path / "ckpt_whole")
    whole = merge_grid(tmp_path / "whole")
    for shard in ("0/2", "1/2"):
        run_experiment(SMALL_TABLE, base, tmp_path / "sharded", checkpoints_dir=tmp_path / "ckpt_sharded",
                       shard=shard)
    sharded = merge_grid(tmp_path / "sharded")
    assert sharded["cells"] == whole["cells"] and sharded["tests"] == whole["tests"]
    assert set(whole["variants"]) == {"ssad", "reference", "sac"} and whole["seeds"] == [0, 1]
    assert whole["worlds"] == [3, 4] and whole["heterogeneities"] == [1.0]
    provenance = whole["provenance"][0]
    assert {"commit", "dirty", "code_sha256", "first_date", "device", "torch", "cpu_capability", "threads"} <= set(
        provenance)
    assert provenance["runs"] == 12 and provenance["threads"] == 1
    dataset = whole["datasets"]["w3_h1"]
    assert dataset["kind"] == "synthetic" and dataset["generator_version"] == 3 and len(dataset["fingerprint"]) == 64
    assert whole["datasets"]["w4_h1"]["fingerprint"] != dataset["fingerprint"]  # every world is its own dataset
    assert whole["configs"]["reference"]["model"] == "reference"  # every variant's own config is recorded
    assert whole["configs"]["sac"]["sac_preset"] == "official"
    assert (tmp_path / "whole" / "table.csv").read_text().count("\n") == 13
    test = whole["tests"]["sac vs ssad, h=1"]
    assert test["world_differences"] == pytest.approx([
        np.mean(whole["cells"]["sac"]["1"][world]["per_seed"]["Avg 0.1:0.7"])
        - np.mean(whole["cells"]["ssad"]["1"][world]["per_seed"]["Avg 0.1:0.7"]) for world in ("3", "4")])
    assert f"{100 * test['mean']:+.2f} [" in format_table(whole) and whole["hypotheses"][0]["name"] == "S1"
    grid = json.loads((tmp_path / "whole" / "grid.json").read_text())
    runs = [RunResult.from_dict(json.loads(path.read_text()))
            for path in sorted((tmp_path / "whole" / "runs").glob("*.json"))]
    with pytest.raises(ValueError, match="incomplete grid"):
        summarize_grid(runs[:-1], grid)
    with pytest.raises(ValueError, match="i/n"):
        parse_shard("2")
    # the seeds of each model trained in one loop: the same grid, every run recorded as trained together
    run_experiment(SMALL_TABLE, base, tmp_path / "together", checkpoints_dir=tmp_path / "ckpt_together",
                   seeds_together=True)
    together = merge_grid(tmp_path / "together")
    assert together["seeds"] == [0, 1] and set(together["variants"]) == set(whole["variants"])
    runs = [json.loads(path.read_text()) for path in sorted((tmp_path / "together" / "runs").glob("*.json"))]
    assert len(runs) == 12 and all(run["trained_together"] == 2 for run in runs)


def test_a_run_is_dirty_only_when_the_package_differs_from_its_commit(tmp_path):
    import subprocess

    from sac_minimal.lab.provenance import git_state

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "code.py").write_text("x = 1\n")
    (tmp_path / "table.json").write_text("{}\n")
    git("init", "-q")
    git("-c", "user.email=a@b", "-c", "user.name=a", "add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "start")
    (tmp_path / "table.json").write_text('{"merged": true}\n')  # a record merged while runs train
    assert git_state(tmp_path / "package")["dirty"] is False
    (tmp_path / "package" / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path / "package")["dirty"] is True
