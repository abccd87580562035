"""Ablation grids: every variant is a valid configuration, union runs serve each table, Table VIII's counts."""

import pytest

from sac_minimal.ablations import PAPER_COST, ablation_table, cost_table, run_union
from sac_minimal.config import profile
from sac_minimal.experiments import load_runs
from sac_minimal.variants import EXPERIMENTS, VARIANTS, variants_of


def test_every_variant_builds_a_valid_config():
    base = profile("quick")
    for variant in VARIANTS.values():
        config = variant.config(base, seed=0)
        sac = config.sac_config(64, 64)
        assert (sac is None) == (variant.model in ("ssad", "oracle"))
    assert VARIANTS["ot"].config(base, 0).sac_config(8, 8).pooling == "average"
    assert VARIANTS["paper_sigmoid_s"].config(base, 0).sac_config(8, 8).eps == 1e-3
    for name, experiment in EXPERIMENTS.items():
        assert all(baseline in experiment.variants and candidate in experiment.variants
                   for baseline, candidate in experiment.comparisons), name
    assert VARIANTS["sac_stabilised"].config(base, 0).sac_config(8, 8).structure_activation == "softmax"
    with pytest.raises(ValueError, match="unknown experiment"):
        variants_of("everything")


def test_union_run_serves_each_table(quick, tmp_path):
    """Training the union of several tables once gives each table its own rows, comparisons and labels."""
    base = quick(epochs=1)
    run_union(["alternatives"], base, [0, 1], tmp_path / "results", checkpoints_dir=tmp_path / "runs")
    table = ablation_table(load_runs(tmp_path / "results"), "alternatives")
    assert list(table["variants"]) == ["sequential", "nonlocal", "composed", "sac"]
    assert set(table["comparisons"]) == {"sequential vs composed", "nonlocal vs composed", "sac vs composed"}
    assert table["labels"]["sac"] == "SAC (official)"


def test_cost_table_counts():
    """Table VIII: SSAD's FLOPs equal a hand count of its convolutions, and the light Θ adds the paper's increments."""
    rows = {row["model"]: row for row in cost_table()}
    assert rows["SSAD"]["parameters_M"] == pytest.approx(7.829864)
    # 2 x the multiply-adds of SSAD's convolutions on a 2048 x 128 window, counted by hand.
    macs = (2048 * 256 * 9 * 128 + 256 * 256 * 9 * 64 + 256 * 512 * 3 * 16 + 512 * 512 * 3 * 8 + 512 * 512 * 3 * 4
            + 512 * 120 * 3 * (16 + 8 + 4))
    assert rows["SSAD"]["GFLOPs"] == pytest.approx(2 * macs / 1e9)
    assert rows["SSAD+Θ"]["theta_parameters_M"] == pytest.approx(4 * (1024 * 1024 * 3 + 1024) / 1e6)
    assert rows["SSAD+SAC"]["parameters_M"] > rows["SSAD+Θ"]["parameters_M"] > rows["SSAD"]["parameters_M"]
    # The light Θ (one Conv1d(1024, 128, k3) per modality) adds the paper's Table VIII increments, to its digits.
    light = rows["SSAD+SAC (light Θ)"]
    assert light["theta_parameters_M"] == pytest.approx(2 * (1024 * 128 * 3 + 128) / 1e6)
    assert light["GFLOPs"] - rows["SSAD"]["GFLOPs"] >= 2 * 2 * 1024 * 128 * 3 * 128 / 1e9
    paper_params = PAPER_COST["SSAD+SAC"][0] - PAPER_COST["SSAD"][0]
    paper_flops = PAPER_COST["SSAD+SAC"][1] - PAPER_COST["SSAD"][1]
    assert round(light["added_parameters_M"], 2) == pytest.approx(paper_params)
    assert round(light["added_GFLOPs"], 2) == pytest.approx(paper_flops)


def test_command_line_ablate_merge_cost_and_train(surrogate, tmp_path, monkeypatch, capsys):
    from sac_minimal.__main__ import main as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAC_MINIMAL_DATA", str(tmp_path / "cache_root"))
    common = ["--profile", "quick", "--epochs", "1", "--data", str(surrogate), "--device", "cpu"]
    assert cli(["ablate", "alternatives", *common, "--seeds", "2", "--shard", "0/2"]) == 0
    assert "when every shard is done" in capsys.readouterr().out
    assert cli(["ablate", "alternatives", *common, "--seeds", "2", "--shard", "1/2"]) == 0
    assert cli(["merge", "results/ablation_alternatives_quick_v2"]) == 0
    assert "SAC (official) - composed (no OT), Avg 0.1:0.7:" in capsys.readouterr().out
    assert cli(["ablate", "cost"]) == 0
    assert "SSAD+SAC" in capsys.readouterr().out and (tmp_path / "results" / "ablation_cost.json").exists()
    assert cli(["train", "--model", "ssad", *common, "--run-dir", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "result.json").exists()
    run_folders = {path.name.rsplit("_", 1)[0] for path in (tmp_path / "cache_root" / "cache" / "runs").iterdir()}
    assert {"sac_seed1", "composed_seed0"} <= run_folders  # checkpoints: one folder per config and dataset
    # a time budget stops at an epoch boundary and says how to continue; the same command then finishes the grid
    two_epochs = ["--profile", "quick", "--epochs", "2", "--data", str(surrogate), "--device", "cpu"]
    arguments = ["ablate", "alternatives", *two_epochs, "--seeds", "2", "--seeds-together", "--name", "budget"]
    assert cli([*arguments, "--max-minutes", "0.00001"]) == 0
    assert "stopped by --max-minutes with 8 runs unfinished" in capsys.readouterr().out
    assert cli(arguments) == 0
    assert "non-local - composed (no OT)" in capsys.readouterr().out
