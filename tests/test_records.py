"""Recorded results: re-verification is exact on the machine type that made a record, catches a change of the
code or of the record (its table, its run files, its provenance), and the records in results/ still reproduce."""

import json
import shutil
from pathlib import Path

import pytest

from sac_minimal import detection
from sac_minimal.experiments import merge_grid, run_experiment
from sac_minimal.hypotheses import Hypothesis
from sac_minimal.records import BOOK_RECORDS, Check, check_table, parse_checks, record_status, verify_record
from sac_minimal.variants import Experiment

RESULTS = Path(__file__).resolve().parents[1] / "results"
TINY = Experiment(("ssad", "sac"), (("ssad", "sac"),), "a tiny grid",
                  (Hypothesis("T1", "SAC beats SSAD", "ssad", "sac", "greater"),), primary=(("ssad", "sac"),),
                  seeds=2, worlds=(3, 4))


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """A two-variant, two-world, two-seed, two-epoch record on the tiny surrogate."""
    from sac_minimal.config import profile

    folder = tmp_path_factory.mktemp("record")
    patch = pytest.MonkeyPatch()
    patch.setenv("SAC_MINIMAL_DATA", str(folder / "data"))
    base = profile("quick", data_size="tiny", device="cpu", epochs=2, base_channels=16, main_channels=32)
    run_experiment(TINY, base, folder / "results", checkpoints_dir=folder / "runs")
    merge_grid(folder / "results")
    yield folder / "results"
    patch.undo()


@pytest.fixture
def copy(record, tmp_path):
    """A copy of the record to alter."""
    shutil.copytree(record, tmp_path / "copy")
    return tmp_path / "copy"


def _edit(path: Path, change) -> None:
    values = json.loads(path.read_text())
    change(values)
    path.write_text(json.dumps(values))


def test_a_fresh_record_reproduces_exactly(record):
    results = verify_record(record, [Check("ssad_w4_h1_s1", 1), Check("sac_w3_h1_s0", None)])
    assert [result.outcome for result in results] == ["exact match", "exact match"]
    assert all(result.passed and result.same_machine_type for result in results)
    assert len(results[1].compared) == 2 * 10 + 9  # two epochs of ten metric columns, nine mAP figures
    status = record_status(record)
    assert status.same_code and set(status.datasets_here.values()) == {"same"}
    assert "byte-identical" in status.format() and "2 the same here" in status.format()


def test_verification_fails_when_the_code_changes(record, monkeypatch):
    monkeypatch.setitem(detection.LOSS_WEIGHTS, "overlap", 11.0)
    result = verify_record(record, [Check("ssad_w3_h1_s0", 1)])[0]
    assert not result.passed and result.outcome == "failed" and "FAILED" in result.format()


def test_verification_fails_when_a_run_file_is_altered(copy):
    _edit(copy / "runs" / "sac_w3_h1_s0.json", lambda run: run["evaluation"].__setitem__(
        "mAP@0.5", run["evaluation"]["mAP@0.5"] + 0.001))
    merge_grid(copy)  # even with a table rebuilt to match, the re-run disagrees
    assert verify_record(copy, [Check("sac_w3_h1_s0", None)])[0].outcome == "failed"


def test_an_edited_table_does_not_pass(copy):
    """The book reads table.json: a mean or a per-seed value edited there must fail verification."""
    _edit(copy / "table.json", lambda table: table["variants"]["sac"]["1"]["mean"].__setitem__("Avg 0.1:0.7", 0.9))
    with pytest.raises(ValueError, match="does not match its run files"):
        verify_record(copy, [Check("ssad_w3_h1_s0", 1)])
    shutil.copy(copy / "table.json", copy / "edited.json")
    merge_grid(copy)
    check_table(copy)
    _edit(copy / "table.json", lambda table: table["cells"]["ssad"]["1"]["4"]["per_seed"]["Avg 0.1:0.7"].__setitem__(
        0, 0.5))
    with pytest.raises(ValueError, match="cells"):
        check_table(copy)


def test_a_run_file_under_another_runs_name_does_not_pass(copy):
    runs = copy / "runs"
    shutil.copy(runs / "sac_w3_h1_s0.json", runs / "sac_w3_h1_s1.json")  # seed 0's run under seed 1's name
    with pytest.raises(ValueError, match="not the one its name says"):
        verify_record(copy, [Check("sac_w3_h1_s1", 1)])
    shutil.copy(runs / "sac_w3_h1_s0.json", runs / "sac_w3_h1_s7.json")  # a fabricated extra seed
    with pytest.raises(ValueError, match="not the one its name says"):
        merge_grid(copy)


@pytest.mark.parametrize("change", [
    lambda provenance: provenance.pop("torch"),
    lambda provenance: provenance.__setitem__("threads", -1),
    lambda provenance: provenance.__setitem__("threads", "x"),
    lambda provenance: provenance.__setitem__("commit", "--output=/tmp/pwned"),
], ids=["no torch", "threads -1", "threads x", "commit as an option"])
def test_a_run_with_malformed_provenance_is_an_error_not_a_lenient_pass(copy, change):
    _edit(copy / "runs" / "ssad_w3_h1_s0.json", lambda run: change(run["provenance"]))
    with pytest.raises(ValueError, match="malformed"):
        verify_record(copy, [Check("ssad_w3_h1_s0", 1)])


def test_a_record_commit_never_reaches_git_as_an_option(copy, tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    _edit(copy / "table.json", lambda table: table["provenance"][0].__setitem__("commit", f"--output={target}"))
    with pytest.raises(ValueError, match="not a 40-digit commit"):
        record_status(copy)
    assert target.read_text() == "keep me"
    from sac_minimal.provenance import code_changed_since

    assert code_changed_since(f"--output={target}") is None and target.read_text() == "keep me"


@pytest.mark.parametrize("change, message", [
    (lambda table: table.pop("provenance"), "lacks 'provenance'"),
    (lambda table: table.pop("datasets"), "lacks 'datasets'"),
    (lambda table: table.__setitem__("seeds", []), "no provenance, worlds or seeds"),
], ids=["no provenance", "no datasets", "empty seeds"])
def test_a_table_without_provenance_datasets_or_seeds_gives_a_message(copy, change, message):
    _edit(copy / "table.json", change)
    with pytest.raises(ValueError, match=message):
        record_status(copy)


def test_checks_are_parsed_strictly(record):
    assert parse_checks(["sac_w3_h1_s0:all", "ssad_w4_h0.5_s1:2"]) == [Check("sac_w3_h1_s0", None),
                                                                       Check("ssad_w4_h0.5_s1", 2)]
    for text in ("ssad:0:1", "sac_w3_h1_s0:0", "sac_w3_h1_s0:-1", "sac_w3_h1_s0:x", "../x_w1_h1_s0:1"):
        with pytest.raises(ValueError):
            parse_checks([text])
    with pytest.raises(ValueError, match="records 2 epoch"):
        verify_record(record, [Check("ssad_w3_h1_s0", 5)])
    with pytest.raises(FileNotFoundError, match="no run"):
        verify_record(record, [Check("ssad_w9_h1_s0", 1)])


def test_record_status_says_when_a_dataset_is_not_written_yet(record, monkeypatch, tmp_path):
    monkeypatch.setenv("SAC_MINIMAL_DATA", str(tmp_path / "empty"))
    status = record_status(record)
    assert set(status.datasets_here.values()) == {"absent"} and "2 not written yet" in status.format()


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


def test_on_another_machine_type_a_one_percent_change_still_fails(copy, monkeypatch):
    """Strictness comes from comparing this machine with the run's: a run made elsewhere is checked within the
    measured cross-machine tolerance, and a 1 % change of a loss weight is far outside it."""
    _edit(copy / "runs" / "ssad_w3_h1_s0.json", lambda run: run["provenance"].__setitem__("cpu", "another CPU"))
    same = verify_record(copy, [Check("ssad_w3_h1_s0", 1)])[0]
    assert not same.same_machine_type and same.outcome == "exact match"
    monkeypatch.setitem(detection.LOSS_WEIGHTS, "overlap", detection.LOSS_WEIGHTS["overlap"] * 1.01)
    changed = verify_record(copy, [Check("ssad_w3_h1_s0", 1)])[0]
    assert changed.outcome == "failed" and "another machine type" in changed.format()
    whole = verify_record(copy, [Check("ssad_w3_h1_s0", None)])[0]
    assert whole.outcome == "failed"  # its first epochs already disagree
