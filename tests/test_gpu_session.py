"""The prepared GPU session, dry-run on the CPU at a tiny size: every step, flag and record it would write."""

import json

from sac_minimal.lab.cli import main as cli
from sac_minimal.lab.gpu_session import read_session
from sac_minimal.lab.variants import EXPERIMENTS


def test_gpu_session_dry_run_records_table1_and_table6(tmp_path, capsys):
    assert cli(["gpu-run", "--out", str(tmp_path), "--dry-run", "--seeds", "2", "--max-minutes", "10"]) == 0
    summary = read_session(tmp_path)
    assert summary["dry_run"] and summary["records"]["table1"]["complete"]
    assert summary["records"]["ablation_components"]["complete"]
    assert {"write the surrogate", "benchmarks", "table1", "components"} <= set(summary["phases"])
    assert summary["bench_train"]["runs"] == 2 and summary["bench_phases"]["milliseconds"]["step"] > 0
    table = json.loads((tmp_path / "results" / "table1_quick_v3" / "table.json").read_text())
    assert list(table["variants"]) == list(EXPERIMENTS["table1"].variants)  # every row of Table I, controls too
    assert table["worlds"] == [3, 4] and table["heterogeneities"] == [1.0]
    provenance = table["provenance"][0]
    assert {"device", "torch", "cuda", "commit", "code_sha256"} <= set(provenance)
    dataset = table["datasets"]["w3_h1"]
    assert dataset["generator_version"] == 3 and len(dataset["fingerprint"]) == 64
    assert (tmp_path / "data" / "cache" / "synthetic_tiny_world4_h1_v3" / "synthetic.json").exists()
    runs = [json.loads(path.read_text()) for path in (tmp_path / "results" / "table1_quick_v3" / "runs").iterdir()]
    assert all(run["trained_together"] == 2 for run in runs)
    assert "table1: complete" in capsys.readouterr().out


def test_gpu_session_records_what_fits_and_says_how_to_finish(tmp_path):
    assert cli(["gpu-run", "--out", str(tmp_path), "--dry-run", "--seeds", "2", "--max-minutes", "0.001"]) == 0
    summary = read_session(tmp_path)
    assert not summary["records"]["table1"]["complete"]
    assert summary["records"]["table1"]["to_finish"].startswith("python -m sac_minimal table1 --profile quick")
