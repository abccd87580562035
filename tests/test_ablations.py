"""Ablation grids: every variant is a valid configuration, experiments are well formed, Table VIII's counts, and
the command line runs, shards, merges and resumes a grid."""

import pytest

from sac_minimal.lab.ablations import PAPER_COST, cost_table
from sac_minimal.lab.config import profile
from sac_minimal.lab.hypotheses import Hypothesis
from sac_minimal.lab.variants import EXPERIMENTS, VARIANTS, Experiment, variants_of


def test_every_variant_builds_a_valid_config():
    base = profile("quick")
    for variant in VARIANTS.values():
        config = variant.config(base, seed=0, world=4, heterogeneity=0.5)
        assert (config.world, config.heterogeneity) == (4, 0.5)
        sac = config.sac_config(64, 64)
        assert (sac is None) == (variant.model in ("ssad", "reference", "privileged", "privileged_window",
                                                   "privileged_video", "headroom"))
    assert VARIANTS["ot"].config(base, 0).sac_config(8, 8).pooling == "average"
    assert VARIANTS["paper_sigmoid_s"].config(base, 0).sac_config(8, 8).eps == 1e-3
    assert VARIANTS["sac_stabilised"].config(base, 0).sac_config(8, 8).structure_activation == "softmax"
    with pytest.raises(ValueError, match="unknown experiment"):
        variants_of("everything")


def test_an_experiment_only_declares_what_it_tests():
    with pytest.raises(ValueError, match="must be variants"):
        Experiment(("ssad",), (("ssad", "sac"),), "x")
    with pytest.raises(ValueError, match="reads a test the experiment does not run"):
        Experiment(("ssad", "sac"), (("ssad", "sac"),), "x", (Hypothesis("H", "s", "ssad", "sac", "less", 0.5),))
    learning_rate = EXPERIMENTS["learning_rate"].base_config(profile("quick"))
    assert learning_rate.learning_rate == 1e-4 and learning_rate.epochs > profile("quick").epochs


def test_cost_table_counts():
    """Table VIII: SSAD's FLOPs equal a hand count of its convolutions, and the light Θ adds the paper's increments."""
    rows = {row["model"]: row for row in cost_table()}
    assert rows["SSAD"]["parameters_M"] == pytest.approx(7.829864)
    # 2 x the multiply-adds of SSAD's convolutions on a 2048 x 128 window, counted by hand.
    macs = (2048 * 256 * 9 * 128 + 256 * 256 * 9 * 64 + 256 * 512 * 3 * 16 + 512 * 512 * 3 * 8 + 512 * 512 * 3 * 4
            + 512 * 120 * 3 * (16 + 8 + 4))
    assert rows["SSAD"]["GFLOPs"] == pytest.approx(2 * macs / 1e9)
    assert rows["SSAD+Θ"]["theta_parameters_M"] == pytest.approx(4 * (1024 * 1024 * 3 + 1024) / 1e6)
    assert rows["SAC (official)"]["parameters_M"] > rows["SSAD+Θ"]["parameters_M"] > rows["SSAD"]["parameters_M"]
    # The light Θ (one Conv1d(1024, 128, k3) per modality) adds the paper's Table VIII increments, to its digits.
    light = rows["SAC, light Θ"]
    assert light["theta_parameters_M"] == pytest.approx(2 * (1024 * 128 * 3 + 128) / 1e6)
    assert light["GFLOPs"] - rows["SSAD"]["GFLOPs"] >= 2 * 2 * 1024 * 128 * 3 * 128 / 1e9
    paper_params = PAPER_COST["SSAD+SAC"][0] - PAPER_COST["SSAD"][0]
    paper_flops = PAPER_COST["SSAD+SAC"][1] - PAPER_COST["SSAD"][1]
    assert round(light["added_parameters_M"], 2) == pytest.approx(paper_params)
    assert round(light["added_GFLOPs"], 2) == pytest.approx(paper_flops)


TINY = ["--profile", "quick", "--device", "cpu", "--worlds", "3", "4", "--seeds", "2"]


def test_command_line_ablate_merge_cost_and_train(data_home, tmp_path, monkeypatch, capsys):
    from sac_minimal.lab.cli import main as cli

    monkeypatch.chdir(tmp_path)
    common = [*TINY, "--epochs", "1"]
    assert cli(["ablate", "alternatives", *common, "--shard", "0/2"]) == 0
    assert "when every shard is done" in capsys.readouterr().out
    assert cli(["ablate", "alternatives", *common, "--shard", "1/2"]) == 0
    assert cli(["merge", "results/ablation_alternatives_quick_v3"]) == 0
    out = capsys.readouterr().out
    assert "sac vs sequential, h=1 (primary)" in out and "VII1" in out and "Holm p" in out
    assert cli(["ablate", "cost"]) == 0
    assert "SSAD+SAC" in capsys.readouterr().out and (tmp_path / "results" / "ablation_cost.json").exists()
    assert cli(["train", "--model", "ssad", "--world", "3", *TINY[:4], "--epochs", "1",
                "--run-dir", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "result.json").exists()
    run_folders = {path.name.rsplit("_", 1)[0] for path in (data_home / "cache" / "runs").iterdir()}
    assert {"sac_w4_h1_s1", "composed_w3_h1_s0"} <= run_folders  # checkpoints: one folder per config and dataset
    # a time budget stops at an epoch boundary and says how to continue; the same command then finishes the grid
    arguments = ["ablate", "alternatives", *TINY, "--epochs", "2", "--seeds-together", "--name", "budget"]
    assert cli([*arguments, "--max-minutes", "0.00001"]) == 0
    assert "stopped by --max-minutes with 16 runs unfinished" in capsys.readouterr().out
    assert cli(arguments) == 0
    assert "composed vs nonlocal, h=1" in capsys.readouterr().out
