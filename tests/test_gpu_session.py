"""The prepared GPU session, dry-run on the CPU at a tiny size: every step, flag and record it would write."""

import json

from sac_minimal.lab.cli import main as cli
from sac_minimal.lab.gpu_session import read_session
from sac_minimal.lab.variants import EXPERIMENTS


def test_gpu_session_dry_run_records_the_controls_and_table1_on_v4(tmp_path, capsys):
    """The session trains generator v4 (where a control wins at the quick size): first the privileged control at
    three granularities, then the acceptance test on development worlds, then Table I with every row (its attention
    models under the acceptance guard, which exempts the tiny size of a dry run)."""
    assert cli(["gpu-run", "--out", str(tmp_path), "--dry-run", "--seeds", "2", "--max-minutes", "10"]) == 0
    summary = read_session(tmp_path)
    assert summary["dry_run"] and summary["generator_version"] == 4
    records = summary["records"]
    assert all(records[name]["complete"] for name in ("controls_v4_quick_official_loss",
                                                      "acceptance_v4_quick_official_loss",
                                                      "table1_v4_quick_official_loss"))
    assert isinstance(records["acceptance_v4_quick_official_loss"]["passed"], bool)
    assert (tmp_path / "results" / "acceptance_v4_quick_official_loss" / "acceptance.json").exists()
    acceptance = json.loads((tmp_path / "results" / "acceptance_v4_quick_official_loss" / "table.json").read_text())
    assert acceptance["worlds"] == [100, 101] and acceptance["heterogeneities"] == [0.0, 0.5, 1.0]
    assert {"write the surrogate", "benchmarks", "controls_v4", "acceptance_v4", "table1_v4"} <= set(summary["phases"])
    assert summary["bench_train"]["runs"] == 2 and summary["bench_phases"]["milliseconds"]["step"] > 0
    controls = json.loads((tmp_path / "results" / "controls_v4_quick_official_loss" / "table.json").read_text())
    assert list(controls["variants"]) == ["ssad", "privileged", "privileged_window", "privileged_video"]
    table = json.loads((tmp_path / "results" / "table1_v4_quick_official_loss" / "table.json").read_text())
    assert list(table["variants"]) == list(EXPERIMENTS["table1_v4"].variants)  # every row of Table I, controls too
    assert table["worlds"] == [110, 111] and table["heterogeneities"] == [1.0]
    provenance = table["provenance"][0]
    assert {"device", "torch", "cuda", "commit", "code_sha256"} <= set(provenance)
    dataset = table["datasets"]["w110_h1"]
    assert dataset["generator_version"] == 4 and len(dataset["fingerprint"]) == 64
    assert (tmp_path / "data" / "cache" / "synthetic_tiny_world111_h1_v4" / "synthetic.json").exists()
    runs = [json.loads(path.read_text())
            for path in (tmp_path / "results" / "table1_v4_quick_official_loss" / "runs").iterdir()]
    assert all(run["trained_together"] == 2 for run in runs)
    assert "table1_v4_quick_official_loss: complete" in capsys.readouterr().out


def test_gpu_session_records_what_fits_and_says_how_to_finish(tmp_path):
    assert cli(["gpu-run", "--out", str(tmp_path), "--dry-run", "--seeds", "2", "--max-minutes", "0.001"]) == 0
    summary = read_session(tmp_path)
    assert not summary["records"]["controls_v4_quick_official_loss"]["complete"]
    assert summary["records"]["table1_v4_quick_official_loss"]["to_finish"].startswith(
        "python -m sac_minimal ablate table1_v4 --profile quick --name table1_v4_quick_official_loss --worlds 110 111")
    assert summary["records"]["acceptance_v4_quick_official_loss"]["to_finish"].endswith(
        "--worlds 100 101 --heterogeneity 0 0.5 1 --seeds 2 --seeds-together --amp")


def test_gpu_session_without_an_acceptance_record_for_its_size_refuses_table1_and_says_how_to_go_on(tmp_path,
                                                                                                     monkeypatch):
    """At full size the attention rows of Table I need results/acceptance_v4_full: without it the session records
    the controls and the acceptance test, refuses Table I before training any of its rows, and says what to do."""
    from sac_minimal.lab import acceptance

    monkeypatch.setattr(acceptance, "acceptance_record",
                        lambda config: "acceptance_v4_missing" if config.model == "ssad_sac" else None)
    assert cli(["gpu-run", "--out", str(tmp_path), "--dry-run", "--seeds", "2", "--max-minutes", "10"]) == 0
    records = read_session(tmp_path)["records"]
    assert records["controls_v4_quick_official_loss"]["complete"]
    assert records["acceptance_v4_quick_official_loss"]["complete"]
    table1 = records["table1_v4_quick_official_loss"]
    assert not table1["complete"] and not table1["finished_runs"] and "is not recorded" in table1["refused"]
    assert table1["to_finish"].startswith(
        "copy DIR/results/acceptance_v4_full_official_loss into results/ once it has passed")
    assert not (tmp_path / "results" / "table1_v4_quick_official_loss" / "grid.json").exists()


def test_a_training_loop_that_would_outlast_the_budget_stops_after_one_epoch(tmp_path):
    """On a machine that is lent and wiped, a loop that cannot finish is lost: with ``finish_within_budget`` the
    loop measures one epoch, projects the rest and stops with the projection; without it, it trains to the budget."""
    from sac_minimal.lab.config import profile
    from sac_minimal.lab.train import WouldNotFinish, fit_runs

    config = profile("quick", data_size="tiny", epochs=3, base_channels=16, main_channels=32, device="cpu")
    configs = [config.replace(model="ssad", seed=seed) for seed in range(2)]
    try:
        fit_runs(configs, [tmp_path / "a0", tmp_path / "a1"], time_budget_s=1e-3, finish_within_budget=True)
    except WouldNotFinish as stop:
        assert stop.epoch_s > 0 and stop.projected_s >= 3 * stop.epoch_s - 1e-9 and stop.budget_s == 1e-3
        assert "stopped after one epoch" in str(stop)
    else:
        raise AssertionError("a loop projected to outlast its budget was not stopped")
    assert fit_runs(configs, [tmp_path / "b0", tmp_path / "b1"], time_budget_s=1e-3) is None  # stopped, no error
    assert fit_runs(configs, [tmp_path / "c0", tmp_path / "c1"], time_budget_s=600,
                    finish_within_budget=True) is not None  # a loop that fits trains to the end


def test_a_session_whose_first_loop_would_not_fit_records_the_projection_and_starts_nothing_larger(tmp_path,
                                                                                                    monkeypatch):
    from sac_minimal.lab import experiments
    from sac_minimal.lab.train import WouldNotFinish

    def too_slow(*args, **kwargs):
        assert kwargs["finish_within_budget"]
        raise WouldNotFinish(projected_s=1320.0, budget_s=400.0, epoch_s=33.0)

    monkeypatch.setattr(experiments, "run_experiment", too_slow)
    assert cli(["gpu-run", "--out", str(tmp_path), "--dry-run", "--seeds", "2", "--max-minutes", "10"]) == 0
    records = read_session(tmp_path)["records"]
    controls = records["controls_v4_quick_official_loss"]
    assert controls["projected_group_minutes"] == 22.0 and controls["epoch_seconds"] == 33.0
    assert not controls["complete"] and controls["to_finish"].startswith("python -m sac_minimal ablate controls_v4")
    for name in ("acceptance_v4_quick_official_loss", "table1_v4_quick_official_loss"):
        assert records[name]["skipped"].startswith("not started: one training loop of controls_v4_quick_official_loss")
        assert not records[name]["complete"]


def test_a_printed_bench_train_table_reads_back_to_its_rates():
    """What came back from a lent machine is printed text: it must read back to the numbers that were printed,
    for one run and for runs trained together, and a text without a table is refused."""
    import pytest

    from sac_minimal.lab.bench import format_train_table, parse_train_tables

    rates = {"ssad": 377.1, "ssad_theta": 273.7, "ssad_sac": 109.6, "ssad_sac_light": 118.8,
             "ssad_input_gradient": 380.0}
    result = {"device": "cuda", "batch": 4, "channels": 1024, **rates,
              **{f"{key}_overhead": rates["ssad"] / value for key, value in rates.items() if key != "ssad"}}
    text = "\n".join(format_train_table({**result, "runs": runs}) for runs in (6, 1))
    tables = parse_train_tables("torch 2.11\n" + text)
    assert [table["runs"] for table in tables] == [6, 1]
    assert all(table[key] == rates[key] for table in tables for key in ("ssad", "ssad_sac", "ssad_sac_light"))
    assert tables[0]["channels"] == 1024 and tables[0]["device"] == "cuda"
    with pytest.raises(ValueError, match="no `bench train` table"):
        parse_train_tables("epoch 1 loss 1.2")


def test_gpu_session_keeps_its_budget_bounds_its_seeds_and_names_its_errors(tmp_path, capsys, monkeypatch):
    """Before: ``--max-minutes 0.01`` ran the benchmarks anyway, ``--seeds 100000`` hung, and any error was
    reported as an acceptance refusal with exit 0."""
    import pytest

    from sac_minimal.lab import experiments

    assert cli(["gpu-run", "--out", str(tmp_path / "short"), "--dry-run", "--max-minutes", "0.01"]) == 0
    summary = read_session(tmp_path / "short")
    assert "bench_train" not in summary and summary["bench_skipped"].startswith("not started")
    assert not any(record["complete"] for record in summary["records"].values())
    assert summary["wall_seconds"] < 30  # at most one measured epoch past the budget, never the benchmarks
    with pytest.raises(SystemExit):
        cli(["gpu-run", "--out", str(tmp_path / "many"), "--dry-run", "--seeds", "100000"])
    assert "a number of runs trained at once, 1 to 64" in capsys.readouterr().err

    def broken(*arguments, **options):
        raise ValueError("the disk is full, which is no refusal")

    monkeypatch.setattr(experiments, "run_experiment", broken)
    assert cli(["gpu-run", "--out", str(tmp_path / "broken"), "--dry-run", "--seeds", "1"]) == 2
    assert "the disk is full, which is no refusal" in capsys.readouterr().err
