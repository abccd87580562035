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
    assert all(records[name]["complete"] for name in ("controls_v4_quick", "acceptance_v4_quick", "table1_v4_quick"))
    assert isinstance(records["acceptance_v4_quick"]["passed"], bool)
    assert (tmp_path / "results" / "acceptance_v4_quick" / "acceptance.json").exists()
    acceptance = json.loads((tmp_path / "results" / "acceptance_v4_quick" / "table.json").read_text())
    assert acceptance["worlds"] == [100, 101] and acceptance["heterogeneities"] == [0.0, 0.5, 1.0]
    assert {"write the surrogate", "benchmarks", "controls_v4", "acceptance_v4", "table1_v4"} <= set(summary["phases"])
    assert summary["bench_train"]["runs"] == 2 and summary["bench_phases"]["milliseconds"]["step"] > 0
    controls = json.loads((tmp_path / "results" / "controls_v4_quick" / "table.json").read_text())
    assert list(controls["variants"]) == ["ssad", "privileged", "privileged_window", "privileged_video"]
    table = json.loads((tmp_path / "results" / "table1_v4_quick" / "table.json").read_text())
    assert list(table["variants"]) == list(EXPERIMENTS["table1_v4"].variants)  # every row of Table I, controls too
    assert table["worlds"] == [110, 111] and table["heterogeneities"] == [1.0]
    provenance = table["provenance"][0]
    assert {"device", "torch", "cuda", "commit", "code_sha256"} <= set(provenance)
    dataset = table["datasets"]["w110_h1"]
    assert dataset["generator_version"] == 4 and len(dataset["fingerprint"]) == 64
    assert (tmp_path / "data" / "cache" / "synthetic_tiny_world111_h1_v4" / "synthetic.json").exists()
    runs = [json.loads(path.read_text()) for path in (tmp_path / "results" / "table1_v4_quick" / "runs").iterdir()]
    assert all(run["trained_together"] == 2 for run in runs)
    assert "table1_v4_quick: complete" in capsys.readouterr().out


def test_gpu_session_records_what_fits_and_says_how_to_finish(tmp_path):
    assert cli(["gpu-run", "--out", str(tmp_path), "--dry-run", "--seeds", "2", "--max-minutes", "0.001"]) == 0
    summary = read_session(tmp_path)
    assert not summary["records"]["controls_v4_quick"]["complete"]
    assert summary["records"]["table1_v4_quick"]["to_finish"].startswith(
        "python -m sac_minimal ablate table1_v4 --profile quick --name table1_v4_quick --worlds 110 111")
    assert summary["records"]["acceptance_v4_quick"]["to_finish"].endswith(
        "--worlds 100 101 --heterogeneity 0 0.5 1 --seeds 2 --seeds-together --amp")


def test_gpu_session_without_an_acceptance_record_for_its_size_refuses_table1_and_says_how_to_go_on(tmp_path,
                                                                                                     monkeypatch):
    """At full size the attention rows of Table I need results/acceptance_v4_full: without it the session records
    the controls and the acceptance test, refuses Table I before training any of its rows, and says what to do."""
    from sac_minimal.lab import experiments

    monkeypatch.setattr(experiments, "acceptance_record",
                        lambda config: "acceptance_v4_missing" if config.model == "ssad_sac" else None)
    assert cli(["gpu-run", "--out", str(tmp_path), "--dry-run", "--seeds", "2", "--max-minutes", "10"]) == 0
    records = read_session(tmp_path)["records"]
    assert records["controls_v4_quick"]["complete"] and records["acceptance_v4_quick"]["complete"]
    table1 = records["table1_v4_quick"]
    assert not table1["complete"] and not table1["finished_runs"] and "is not recorded" in table1["refused"]
    assert table1["to_finish"].startswith("copy DIR/results/acceptance_v4_full into results/ once it has passed")
    assert not (tmp_path / "results" / "table1_v4_quick" / "grid.json").exists()
