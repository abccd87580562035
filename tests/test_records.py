"""Recorded results: re-verification is exact on the machine type that made a record, catches a change of the
code or of the record, and the records committed in results/ still reproduce."""

import json
from pathlib import Path

import pytest

from sac_minimal import detection
from sac_minimal.experiments import merge_grid, run_experiment
from sac_minimal.records import BOOK_RECORDS, Check, record_status, verify_record
from sac_minimal.variants import Experiment

RESULTS = Path(__file__).resolve().parents[1] / "results"
TINY = Experiment(("ssad", "sac"), (("ssad", "sac"),), "a tiny grid")


@pytest.fixture(scope="module")
def record(surrogates, tmp_path_factory):
    """A two-variant, two-seed, two-epoch record on the shared surrogate."""
    from sac_minimal.config import profile

    folder = tmp_path_factory.mktemp("record")
    base = profile("quick", data_root=str(surrogates()), device="cpu", epochs=2)
    run_experiment(TINY, base, [0, 1], folder / "results", checkpoints_dir=folder / "runs")
    merge_grid(folder / "results")
    return folder / "results"


def test_a_fresh_record_reproduces_exactly(record):
    results = verify_record(record, [Check("ssad", 1, 1), Check("sac", 0, None)])
    assert all(result.passed and result.identical and result.exact_expected for result in results)
    assert len(results[1].compared) == 2 * 10 + 9  # two epochs of ten metric columns, nine mAP figures
    status = record_status(record)
    assert status.same_code and status.dataset_here == status.dataset["fingerprint"]
    assert "byte-identical" in status.format() and "the same dataset" in status.format()


def test_verification_fails_when_the_code_changes(record, monkeypatch):
    monkeypatch.setitem(detection.LOSS_WEIGHTS, "overlap", 11.0)
    result = verify_record(record, [Check("ssad", 0, 1)])[0]
    assert not result.passed and not result.identical and "FAILED" in result.format()


def test_verification_fails_when_the_record_is_altered(record, tmp_path):
    import shutil

    altered = tmp_path / "altered"
    shutil.copytree(record, altered)
    path = altered / "runs" / "sac_seed0.json"
    run = json.loads(path.read_text())
    run["evaluation"]["mAP@0.5"] += 0.001
    path.write_text(json.dumps(run))
    assert not verify_record(altered, [Check("sac", 0, None)])[0].passed


@pytest.mark.parametrize("name", sorted(BOOK_RECORDS))
def test_committed_quick_records_still_reproduce(name):
    """The first epoch of a few runs of every committed quick record, re-run: identical on the machine type that
    made it, within tolerance elsewhere. A change to the package that changes training fails here: re-record."""
    folder = RESULTS / name
    if not (folder / "table.json").exists():
        pytest.skip(f"results/{name} is not recorded")
    checks = [check for check in BOOK_RECORDS[name] if check.epochs is not None][:3]
    results = verify_record(folder, checks)
    assert all(result.passed for result in results), "\n".join(result.format() for result in results)
