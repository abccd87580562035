"""Faults a hostile but realistic user meets: no data loss, no silently wrong result, a clear error for every bad
file or argument. Each test names the fault it guards."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, write_tiny_dataset

from sac_minimal.lab.cli import main as cli
from sac_minimal.lab.config import profile
from sac_minimal.data.check import check_dataset
from sac_minimal.data.thumos14 import load_annotations
from sac_minimal.detection import Detections
from sac_minimal.evaluation import evaluate_detections
from sac_minimal.lab.experiments import run_experiment
from sac_minimal.lab.tables import merge_grid
from sac_minimal.files import save_torch_atomic, write_json_atomic
from sac_minimal.ot import entropic_ot_2xT, random_2xT_problems, sinkhorn_log
from sac_minimal.lab.train import fit, prepare_runs
from sac_minimal.lab.variants import Experiment

ONE = Experiment(("ssad",), (), "one row", seeds=1, worlds=(3,))


def without_times(metrics):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in metrics]


# ------------------------------------------------------------------------------------------------ data loss


def test_data_synth_refuses_a_folder_holding_a_real_dataset(tmp_path, capsys):
    root = write_tiny_dataset(tmp_path / "real", TINY)
    before = (root / "annotations" / "thumos14.json").read_text()
    assert cli(["data", "synth", "--root", str(root)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (root / "annotations" / "thumos14.json").read_text() == before
    assert not (root / "feature_format.json").exists()


def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "result.json"
    write_json_atomic(path, {"epoch": 1})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        write_json_atomic(path, {"epoch": 2, "bad": Unserialisable()})
    assert json.loads(path.read_text()) == {"epoch": 1}
    checkpoint = tmp_path / "checkpoint.pt"
    save_torch_atomic(checkpoint, {"epoch": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    original = torch.save
    torch.save = crash
    try:
        with pytest.raises(OSError, match="disk full"):
            save_torch_atomic(checkpoint, {"epoch": 2})
    finally:
        torch.save = original
    assert torch.load(checkpoint)["epoch"] == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint.pt", "result.json"]  # no temp left


def test_a_truncated_checkpoint_falls_back_to_the_previous_epoch(quick, tmp_path):
    config = quick(model="ssad", epochs=3)
    straight = fit(config, tmp_path / "straight")
    assert fit(config, tmp_path / "cut", epoch_budget=2) is None
    checkpoint = tmp_path / "cut" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # a preemption during a non-atomic write
    with pytest.warns(UserWarning, match=r"checkpoint\.pt .*resuming from .*checkpoint_previous\.pt \(epoch 1\)"):
        resumed = fit(config, tmp_path / "cut")
    assert without_times(resumed.metrics) == without_times(straight.metrics)
    (tmp_path / "cut" / "checkpoint.pt").write_bytes(b"")
    (tmp_path / "cut" / "checkpoint_previous.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="no readable checkpoint .* Delete the folder"):
        fit(config, tmp_path / "cut")


def test_a_truncated_run_file_is_detected_and_trained_again(quick, tmp_path):
    base = quick(epochs=1)
    run_experiment(ONE, base, tmp_path / "record", checkpoints_dir=tmp_path / "runs")
    path = tmp_path / "record" / "runs" / "ssad_w3_h1_s0.json"
    whole = json.loads(path.read_text())
    path.write_text(path.read_text()[:200])
    with pytest.warns(UserWarning, match="ssad_w3_h1_s0.json is truncated or corrupt"):
        run_experiment(ONE, base, tmp_path / "record", checkpoints_dir=tmp_path / "other_runs")
    assert json.loads(path.read_text())["evaluation"] == whole["evaluation"]


# ---------------------------------------------------------------------------------- silently wrong results


def test_a_recorded_run_of_another_config_is_never_reused(quick, tmp_path):
    run_experiment(ONE, quick(epochs=1), tmp_path / "record", checkpoints_dir=tmp_path / "runs")
    with pytest.raises(ValueError, match=r"already records another grid \(differs in: base\)"):
        run_experiment(ONE, quick(epochs=2), tmp_path / "record", checkpoints_dir=tmp_path / "runs")
    (tmp_path / "record" / "grid.json").unlink()  # even without the grid file, the run file itself refuses
    with pytest.raises(ValueError, match=r"records another run .*epochs: 1 -> 2"):
        run_experiment(ONE, quick(epochs=2), tmp_path / "record", checkpoints_dir=tmp_path / "runs")


def test_merge_refuses_runs_trained_differently(quick, tmp_path):
    run_experiment(ONE, quick(epochs=1), tmp_path / "record", checkpoints_dir=tmp_path / "runs", seeds=[0, 1])
    path = tmp_path / "record" / "runs" / "ssad_w3_h1_s1.json"
    run = json.loads(path.read_text())
    run["config"]["batch_size"] = 4  # as if a shard had been run with another --batch-size
    path.write_text(json.dumps(run))
    with pytest.raises(ValueError, match=r"runs of ssad were trained differently \(batch_size: 8 -> 4"):
        merge_grid(tmp_path / "record")


def test_merge_refuses_impossible_precisions_and_malformed_run_files(quick, tmp_path, capsys):
    """Before: an AP of 5.0 or -0.5 was accepted by merge, and a run file whose evaluation is a string ended in an
    AttributeError traceback (merge, read_record)."""
    run_experiment(ONE, quick(epochs=1), tmp_path / "record", checkpoints_dir=tmp_path / "runs", seeds=[0, 1])
    path = tmp_path / "record" / "runs" / "ssad_w3_h1_s1.json"
    original = json.loads(path.read_text())
    from sac_minimal.evaluation import EvaluationResult

    def self_consistent(run):  # the mAP recomputed from the edited precisions, as a careful forger would
        thresholds = [name for name in run["evaluation"] if name.startswith("mAP@")]
        precision = np.array([[np.nan if value is None else value for value in row]
                              for row in run["average_precision"]])
        run["evaluation"] = EvaluationResult(np.array([float(name[4:]) for name in thresholds]), precision,
                                             np.zeros(precision.shape[1]), 0).summary()

    for edit, message in ((lambda run: run["average_precision"][0].__setitem__(0, 5.0), "average precision"),
                          (lambda run: run["average_precision"][0].__setitem__(0, -0.5), "average precision"),
                          (lambda run: run.__setitem__("evaluation", "0.4"), "its evaluation is a str")):
        run = json.loads(json.dumps(original))
        edit(run)
        if isinstance(run["evaluation"], dict):
            self_consistent(run)
        path.write_text(json.dumps(run))
        with pytest.raises(ValueError, match=message):
            merge_grid(tmp_path / "record")
        assert cli(["merge", str(tmp_path / "record")]) == 2
        assert "Traceback" not in capsys.readouterr().err


def detections_of(rows):
    return Detections(videos=("v",), video_index=np.zeros(len(rows), dtype=np.int64),
                      labels=np.zeros(len(rows), dtype=np.int64),
                      segments=np.array([row[:2] for row in rows], dtype=np.float64),
                      scores=np.array([row[2] for row in rows], dtype=np.float64))


def test_evaluation_rejects_non_finite_scores_and_bad_segments():
    from sac_minimal.data.thumos14 import VideoRecord

    truth = [VideoRecord("v", "test", 30.0, 100.0, 3000, np.array([[10.0, 20.0]]), np.array([0]))]
    with pytest.raises(ValueError, match="non-finite score"):
        evaluate_detections(detections_of([(10, 20, 0.9), (50, 60, float("nan"))]), truth)
    with pytest.raises(ValueError, match="non-finite or reversed segment"):
        evaluate_detections(detections_of([(20, 10, 0.9)]), truth)
    with pytest.raises(ValueError, match="non-finite or reversed segment"):
        evaluate_detections(detections_of([(10, float("inf"), 0.9)]), truth)


def test_evaluation_scores_the_ground_truth_as_annotated(tmp_path):
    """THUMOS14's protocol does not clip ground truth at the video's end; training targets are clipped."""
    videos = {"video_validation_0000001": ("train", 40.0, 30.0, [("HighJump", 2.0, 5.0)]),
              "video_test_0000001": ("test", 30.0, 30.0, [("Billiards", 20.0, 40.0)])}  # runs 10 s past the end
    root = write_tiny_dataset(tmp_path / "data", videos)
    with pytest.warns(UserWarning, match="clipped"):
        clipped = load_annotations(root).split("test")
    annotated = load_annotations(root, clip_to_video=False).split("test")
    assert clipped[0].segments.tolist() == [[20.0, 30.0]] and annotated[0].segments.tolist() == [[20.0, 40.0]]
    detection = Detections(videos=("video_test_0000001",), video_index=np.zeros(1, dtype=np.int64),
                           labels=np.array([2]), segments=np.array([[20.0, 40.0]]), scores=np.ones(1))
    assert evaluate_detections(detection, annotated).average_over(0.1, 0.7) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        setup = prepare_runs([profile("quick", data_root=str(root), device="cpu", model="ssad")], [tmp_path / "run"])
    assert setup.ground_truth[0].segments.tolist() == [[20.0, 40.0]]  # training evaluates as annotated


def test_training_refuses_feature_files_that_do_not_cover_their_video(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    short = root / "i3d_features" / "video_validation_0000001.npy"
    np.save(short, np.load(short)[:200])  # 40 s at 30 fps needs 300 rows
    config = profile("quick", data_root=str(root), device="cpu", model="ssad", epochs=1)
    with pytest.raises(ValueError, match=r"video_validation_0000001.npy has 200 rows .* needs about 300"):
        fit(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    assert fit(config.replace(accept_length_mismatch=True), tmp_path / "accepted").metrics


def test_a_bad_test_file_is_found_before_the_first_step(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    path = root / "i3d_features" / "video_test_0000001.npy"
    features = np.load(path)
    features[3, 5] = np.nan
    np.save(path, features)
    with pytest.raises(ValueError, match="video_test_0000001.npy: 1 NaN"):
        fit(profile("quick", data_root=str(root), device="cpu", model="ssad", epochs=1), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_transport_solvers_flag_a_result_they_cannot_compute():
    cost, a, b = random_2xT_problems(4, 32, dtype=torch.float32)
    with pytest.raises(ValueError, match="plan is not finite"):
        sinkhorn_log(cost * 1e38, a, b, 0.1)
    mass_one = (a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True))
    with pytest.raises(ValueError, match="misses its row masses"):
        sinkhorn_log(cost * 1e6, *mass_one, 1e-3)
    sinkhorn_log(cost, *mass_one, 1e-3)  # a usable scale passes


# ------------------------------------------------------------------------------------------- clear errors


def test_an_empty_feature_file_is_named(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    (root / "i3d_features" / "video_validation_0000002.npy").write_bytes(b"")
    report = check_dataset(root)
    assert report.unreadable == ["video_validation_0000002"] and not report.ok
    with pytest.raises(ValueError, match=r"video_validation_0000002.npy is empty \(0 bytes\)"):
        fit(profile("quick", data_root=str(root), device="cpu", model="ssad", epochs=1), tmp_path / "run")


@pytest.mark.parametrize("change, message", [
    (lambda document: document.__setitem__("database", None), "'database' mapping"),
    (lambda document: document["database"]["video_test_0000001"].__setitem__("annotations", None),
     "'annotations' must be a list"),
    (lambda document: document["database"]["video_test_0000001"].__setitem__("fps", None), "has fps None"),
    (lambda document: document["database"]["video_test_0000001"].__setitem__("fps", "thirty"), "has fps 'thirty'"),
    (lambda document: document["database"]["video_test_0000001"]["annotations"][0].__setitem__(
        "segment", [1.0, 2.0, 3.0]), "segment is \\[start, end\\]"),
])
def test_data_check_reports_bad_annotation_files_without_raising(tmp_path, change, message):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    path = root / "annotations" / "thumos14.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    report = check_dataset(root)
    assert not report.ok and any(__import__("re").search(message, problem) for problem in report.problems)


def test_data_check_reports_an_annotation_path_that_is_a_folder_and_int64_features(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    (root / "annotations" / "thumos14.json").unlink()
    (root / "annotations" / "thumos14.json").mkdir()
    assert "is not a file" in check_dataset(root).problems[0]
    root = write_tiny_dataset(tmp_path / "ints", TINY)
    path = root / "i3d_features" / "video_test_0000001.npy"
    np.save(path, np.load(path).astype(np.int64))
    report = check_dataset(root)
    assert report.wrong_dtype == ["video_test_0000001 (int64)"] and not report.ok


@pytest.mark.parametrize("arguments, message", [
    (["train", "--seed", "1e20"], "expected a seed, a whole number"),
    (["train", "--seed", "-1"], "expected a seed, a whole number"),
    (["train", "--seed", str(2**40)], "expected a seed, a whole number"),
    (["train", "--max-minutes", "-5"], "positive, finite number of minutes"),
    (["train", "--max-minutes", "nan"], "positive, finite number of minutes"),
    (["bench", "ot", "--lengths", "0"], "expected a whole number >= 1"),
    (["bench", "ot", "--repeats", "0"], "expected a whole number >= 1"),
    (["table1", "--seeds", "0"], "expected a whole number >= 1"),
])
def test_command_line_rejects_bad_numbers_before_doing_anything(arguments, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli(arguments)
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_resuming_with_a_changed_config_names_the_fields(quick, tmp_path):
    config = quick(model="ssad", epochs=2)
    assert fit(config, tmp_path / "run", epoch_budget=1) is None
    with pytest.raises(ValueError, match=r"learning_rate: 0.001 -> 0.002; batch_size: 8 -> 16"):
        fit(config.replace(learning_rate=0.002, batch_size=16), tmp_path / "run")


def test_a_batch_size_whose_learning_rate_is_too_large_is_refused_unless_asked(capsys):
    with pytest.raises(ValueError, match=r"learning rate of 0.016 by the linear scaling rule"):
        profile("quick").with_batch_size(128)
    with pytest.warns(UserWarning, match="diverge"):
        profile("quick").with_batch_size(128, allow_large_learning_rate=True)
    assert cli(["train", "--batch-size", "100000", "--epochs", "1"]) == 2
    assert "--allow-large-lr" in capsys.readouterr().err


def test_transport_solvers_reject_empty_batches_and_bad_settings():
    cost, a, b = random_2xT_problems(3, 8)
    with pytest.raises(ValueError, match="empty problem"):
        entropic_ot_2xT(cost[:0], a[:0], b[:0], 0.1)
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
        sinkhorn_log(cost, a, b, 0.1, gamma=-1e-8)
    with pytest.raises(ValueError, match="tol must be a positive finite number"):
        sinkhorn_log(cost, a, b, 0.1, tol=float("nan"))


# ------------------------------------------------------------------------ round three: files are data, clear edges


class _RunsCode:
    """An object whose unpickling would run code: it creates the marker folder."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.mkdir, (self.marker,)


def test_a_crafted_checkpoint_is_refused_and_never_runs_code(quick, tmp_path):
    from sac_minimal.lab.train import load_checkpoint, load_trained_model

    marker = tmp_path / "code_ran"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"epoch": 1, "config": {}, "payload": _RunsCode(marker)}, run_dir / "checkpoint.pt")
    with pytest.raises(ValueError, match="loading it could run code"):
        load_checkpoint(run_dir)
    with pytest.raises(ValueError, match="no readable checkpoint"):
        load_trained_model(run_dir)
    with pytest.raises(ValueError, match="no readable checkpoint"):
        fit(quick(model="ssad", epochs=1), run_dir)  # a resume, as a grid's checkpoint cache would do
    assert not marker.exists()


def _write_annotation_text(root, text):
    (root / "annotations" / "thumos14.json").write_text(text)


def test_a_video_listed_twice_is_an_error_not_a_silent_split_change(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    text = (root / "annotations" / "thumos14.json").read_text()
    entry = json.dumps({"subset": "Test", "duration": 40.0, "fps": 30.0, "annotations": []})
    _write_annotation_text(root, text.replace('"database": {', '"database": {"video_validation_0000001": ' + entry
                                              + ", ", 1))
    with pytest.raises(ValueError, match="more than once"):
        load_annotations(root)
    report = check_dataset(root)
    assert not report.ok and "more than once" in report.format()


@pytest.mark.parametrize("video", ["/etc/hostname", "../outside", "a/b"])
def test_a_video_id_that_is_a_path_is_refused(tmp_path, video):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    document = json.loads((root / "annotations" / "thumos14.json").read_text())
    document["database"][video] = document["database"].pop("video_test_0000001")
    _write_annotation_text(root, json.dumps(document))
    with pytest.raises(ValueError, match="not a plain name"):
        load_annotations(root)
    assert not check_dataset(root).ok


def test_the_dataset_fingerprint_sees_an_edited_annotation_or_format_file(tmp_path):
    from sac_minimal.lab.provenance import dataset_fingerprint

    root = write_tiny_dataset(tmp_path / "data", TINY)
    before = dataset_fingerprint(root)
    document = json.loads((root / "annotations" / "thumos14.json").read_text())
    document["database"]["video_test_0000001"]["annotations"][0]["segment"] = [4.0, 7.0]
    _write_annotation_text(root, json.dumps(document))
    edited = dataset_fingerprint(root)
    assert edited != before
    (root / "feature_format.json").write_text(json.dumps({"width": 2048, "channel_order": "flow_rgb",
                                                          "frames_per_step": 4}))
    assert dataset_fingerprint(root) not in (before, edited)


def test_entropic_ot_flags_an_eps_it_cannot_resolve_and_accepts_any_real_eps():
    import numpy as np

    cost, a, b = random_2xT_problems(4, 16, dtype=torch.float32)
    with pytest.raises(ValueError, match="below the smallest positive torch.float32"):
        entropic_ot_2xT(cost, a, b, 1e-300)
    cost64, a64, b64 = random_2xT_problems(4, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="misses its row masses"):
        entropic_ot_2xT(cost64, a64, b64, 1e-12)
    reference = entropic_ot_2xT(cost, a, b, 0.1).plan
    for eps in (np.float32(0.1), np.float64(0.1), torch.tensor(0.1)):
        assert torch.allclose(entropic_ot_2xT(cost, a, b, eps).plan, reference, atol=1e-6)
        assert torch.allclose(sinkhorn_log(cost, a, b, eps).plan, sinkhorn_log(cost, a, b, 0.1).plan)
    for eps in (True, "0.1", torch.tensor([0.1, 0.2]), 0.0, float("inf")):
        with pytest.raises(ValueError, match="eps must be a positive finite number"):
            entropic_ot_2xT(cost, a, b, eps)


def test_an_npz_archive_named_npy_is_named_in_training_and_in_data_check(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    features = np.load(root / "i3d_features" / "video_test_0000001.npy")
    with open(root / "i3d_features" / "video_test_0000001.npy", "wb") as handle:
        np.savez(handle, features=features)
    report = check_dataset(root)
    assert report.unreadable == ["video_test_0000001"] and not report.ok
    config = profile("quick", data_root=str(root), epochs=1, device="cpu")
    with pytest.raises(ValueError, match="an .npz archive"):
        fit(config, tmp_path / "run")


def test_a_feature_width_written_as_a_float_is_reported(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", TINY)
    (root / "feature_format.json").write_text(json.dumps({"width": 2048.0, "channel_order": "rgb_flow",
                                                          "frames_per_step": 4}))
    report = check_dataset(root)
    assert not report.ok and "whole number" in report.format()
    with pytest.raises(ValueError, match="whole number"):
        fit(profile("quick", data_root=str(root), epochs=1, device="cpu"), tmp_path / "run")


def test_a_run_file_with_a_missing_metric_is_named(quick, tmp_path):
    from sac_minimal.lab.runs import read_run

    run_experiment(ONE, quick(epochs=1), tmp_path / "record", checkpoints_dir=tmp_path / "runs")
    path = tmp_path / "record" / "runs" / "ssad_w3_h1_s0.json"
    run = json.loads(path.read_text())
    run["evaluation"]["Avg 0.1:0.7"] = None
    path.write_text(json.dumps(run))
    with pytest.raises(ValueError, match="no finite number for Avg 0.1:0.7"):
        read_run(path)


def test_a_full_disk_names_the_file_and_says_how_to_resume(quick, tmp_path, monkeypatch, capsys):
    import errno
    import os

    from sac_minimal.files import WriteError

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "result.json"
    write_json_atomic(path, {"epoch": 1})
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteError, match=r"result\.json .*No space left.*run the same command again"):
        write_json_atomic(path, {"epoch": 2})
    assert json.loads(path.read_text()) == {"epoch": 1} and [p.name for p in tmp_path.iterdir()] == ["result.json"]
    with pytest.raises(WriteError, match=r"checkpoint\.pt"):
        fit(quick(model="ssad", epochs=1), tmp_path / "run")
    surrogate = tmp_path / "surrogate"
    assert cli(["data", "synth", "--root", str(surrogate), "--size", "tiny"]) == 2
    message = capsys.readouterr().err
    assert "No space left" in message and "run the same command again" in message
    assert not (surrogate / "synthetic.json").exists()  # an incomplete surrogate is never taken for a complete one


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_sac_names_features_of_another_precision(dtype):
    from sac_minimal.sac import SAC, SACConfig

    sac = SAC(SACConfig.official(appearance_channels=8, motion_channels=8))
    features = torch.randn(2, 8, 32).to(dtype)
    with pytest.raises(ValueError, match=f"{dtype} but SAC's weights are torch.float32"):
        sac(features, features)


def test_data_check_reports_segments_that_start_before_zero(tmp_path):
    videos = dict(TINY)
    videos["video_test_0000001"] = ("test", 30.0, 29.97, [("Billiards", -1.5, 6.0)])
    root = write_tiny_dataset(tmp_path / "data", videos)
    report = check_dataset(root)
    assert report.negative_starts == {"video_test_0000001": 1}
    assert "starting before 0 s" in report.format()
    with pytest.warns(UserWarning, match="started before 0 s"):
        load_annotations(root)


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", ".."])
def test_a_record_name_outside_results_is_refused(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli(["table1", "--profile", "quick", "--seeds", "2", "--name", name]) == 2
    assert "one folder name inside results/" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_temporary_file_left_by_a_killed_write_is_removed_on_the_next_start(quick, tmp_path):
    import os
    import time

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = run_dir / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = run_dir / ".metrics.csv.def456.tmp"  # another process's write in progress: left alone
    fresh.write_bytes(b"")
    fit(quick(model="ssad", epochs=1), run_dir)
    assert not stale.exists() and fresh.exists()


def test_records_follow_the_umask(tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "table.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "table.json").stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------- crashes from data and arguments


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(b"not a zip archive at all"),
    lambda path: path.write_bytes(path.read_bytes()[:200] + bytes(range(256)) * 4 + path.read_bytes()[1224:]),
    lambda path: torch.save({"weights": torch.zeros(2)}, path),
], ids=["not a zip", "fuzzed", "another archive"])
def test_any_unreadable_checkpoint_falls_back_to_the_previous_one(quick, tmp_path, damage):
    from sac_minimal.lab.train import load_checkpoint

    fit(quick(model="ssad", epochs=2), tmp_path / "run")
    damage(tmp_path / "run" / "checkpoint.pt")
    with pytest.warns(UserWarning, match="resuming from .*checkpoint_previous.pt"):
        state = load_checkpoint(tmp_path / "run")
    assert state["epoch"] == 1
    damage(tmp_path / "run" / "checkpoint_previous.pt")
    with pytest.raises(ValueError, match="no readable checkpoint"):
        load_checkpoint(tmp_path / "run")


def test_a_full_disk_while_saving_a_checkpoint_is_a_write_error(tmp_path, monkeypatch):
    from sac_minimal.files import WriteError

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0: No space left")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(WriteError, match="checkpoint.pt.*No space left"):
        save_torch_atomic(tmp_path / "checkpoint.pt", {"epoch": 1})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arguments, message", [
    (["--threads", "100000", "data", "check", "--root", "."], "CPU cores"),
    (["table1", "--name", "", "--epochs", "1"], "--name must be one folder name"),
    (["table1", "--worlds", "3", "3", "--epochs", "1"], "listed twice"),
    (["table1", "--heterogeneity", "1", "1", "--epochs", "1"], "listed twice"),
], ids=["threads", "empty name", "a world twice", "an h twice"])
def test_bad_grid_arguments_are_refused_before_any_training(arguments, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAC_MINIMAL_DATA", str(tmp_path / "data"))
    try:
        code = cli(arguments)
    except SystemExit as stop:  # argparse's own refusal
        code = stop.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_one_line(tmp_path, capsys):
    assert cli(["train", "--device", "cuda", "--run-dir", str(tmp_path / "run")]) == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


def test_the_cached_book_build_without_pyyaml_is_one_line(monkeypatch, capsys):
    import shutil
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/true")
    assert cli(["book", "--cache"]) == 2
    assert "needs PyYAML" in capsys.readouterr().err


def test_data_check_never_raises_on_deeply_nested_annotations(tmp_path):
    root = write_tiny_dataset(tmp_path / "real", TINY)
    (root / "annotations" / "thumos14.json").write_text("[" * 100000 + "]" * 100000)
    report = check_dataset(root)
    assert not report.ok and "nested too deeply" in " ".join(report.problems)
    with pytest.raises(ValueError, match="nested too deeply"):  # and training names it too
        load_annotations(root)


def test_a_test_split_of_only_ambiguous_instances_is_a_problem_not_a_nan(tmp_path):
    videos = {name: (split, duration, fps, [(label if split == "train" else "Ambiguous", start, end)
                                            for label, start, end in segments])
              for name, (split, duration, fps, segments) in TINY.items()}
    root = write_tiny_dataset(tmp_path / "real", videos)
    report = check_dataset(root)
    assert not report.ok and any("test split has no instance" in problem for problem in report.problems)
    config = profile("quick", data_root=str(root), device="cpu", epochs=1)
    with pytest.raises(ValueError, match="test split .* has no instance"):
        prepare_runs([config], [tmp_path / "run"])


def test_a_smaller_surrogate_over_a_larger_one_leaves_no_stale_files(tmp_path):
    from sac_minimal.data.synthetic import write_synthetic_thumos
    from sac_minimal.lab.provenance import dataset_fingerprint

    write_synthetic_thumos(tmp_path / "over", "quick", seed=5)
    write_synthetic_thumos(tmp_path / "over", "tiny", seed=5)
    write_synthetic_thumos(tmp_path / "fresh", "tiny", seed=5)
    assert sorted(path.name for path in (tmp_path / "over" / "i3d_features").iterdir()) == sorted(
        path.name for path in (tmp_path / "fresh" / "i3d_features").iterdir())
    assert dataset_fingerprint(tmp_path / "over") == dataset_fingerprint(tmp_path / "fresh")


def test_the_two_stream_layout_is_named_by_data_check_and_converted(tmp_path, capsys):
    """CoLA's release keeps rgb and flow apart (features/<split>/{rgb,flow}/<video>.npy): data check names the layout
    and the one command that converts it; the converted folder reads as any other."""
    real = write_tiny_dataset(tmp_path / "real", TINY)
    source = tmp_path / "cola"
    for path in (real / "i3d_features").glob("*.npy"):
        features = np.load(path)
        split = "test" if "test" in path.stem else "train"
        for stream, half in (("rgb", features[:, :1024]), ("flow", features[:, 1024:])):
            (source / "features" / split / stream).mkdir(parents=True, exist_ok=True)
            np.save(source / "features" / split / stream / path.name, half)
    report = check_dataset(source)
    assert not report.ok and "convert-two-stream" in report.problems[0] and len(report.problems) == 1
    assert cli(["data", "convert-two-stream", "--source", str(source), "--root", str(tmp_path / "converted"),
                "--frames-per-step", "4"]) == 0
    (tmp_path / "converted" / "annotations" / "thumos14.json").write_text(
        (real / "annotations" / "thumos14.json").read_text())
    for path in (real / "i3d_features").glob("*.npy"):
        assert np.array_equal(np.load(tmp_path / "converted" / "i3d_features" / path.name), np.load(path))
    assert check_dataset(tmp_path / "converted").ok


def _two_stream_release(folder: Path, videos: int = 2) -> Path:
    for stream in ("rgb", "flow"):
        (folder / "features" / "test" / stream).mkdir(parents=True)
        for index in range(videos):
            np.save(folder / "features" / "test" / stream / f"video_test_{index}.npy",
                    np.full((20, 16), index, dtype=np.float32))
    return folder


def test_conversion_never_overwrites_a_dataset_or_its_source(tmp_path):
    """Before: converting into an existing dataset overwrote its features, and through a linked i3d_features/ the
    source itself; a surrogate's synthetic.json stayed over converted data. After: refused, nothing written."""
    from sac_minimal.data.convert import convert_two_stream
    from sac_minimal.data.synthetic import write_synthetic_thumos

    source = _two_stream_release(tmp_path / "release")
    convert_two_stream(source, tmp_path / "first")
    before = (tmp_path / "first" / "i3d_features" / "video_test_0.npy").read_bytes()
    with pytest.raises(ValueError, match="already holds feature_format.json, i3d_features"):
        convert_two_stream(source, tmp_path / "first")
    assert (tmp_path / "first" / "i3d_features" / "video_test_0.npy").read_bytes() == before
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "i3d_features").symlink_to(source / "features" / "test" / "rgb")
    original = (source / "features" / "test" / "rgb" / "video_test_0.npy").read_bytes()
    with pytest.raises(ValueError, match="already holds i3d_features"):
        convert_two_stream(source, linked)
    assert (source / "features" / "test" / "rgb" / "video_test_0.npy").read_bytes() == original
    surrogate = tmp_path / "surrogate"
    write_synthetic_thumos(surrogate, size="tiny", seed=0)
    with pytest.raises(ValueError, match="synthetic.json"):
        convert_two_stream(source, surrogate)
    annotated = tmp_path / "annotated" / "annotations"
    annotated.mkdir(parents=True)
    (annotated / "thumos14.json").write_text((tmp_path / "first" / "annotations" / "thumos14.json").read_text())
    assert convert_two_stream(source, tmp_path / "annotated")["videos"] == 2  # an annotation file of one's own


@pytest.mark.parametrize("spoil, message", [
    (lambda path: path.write_bytes(b""), "is empty"),
    (lambda path: path.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n"), "does not start with numpy's .npy header"),
    (lambda path: np.save(path, np.ones((4, 16), dtype=np.complex64)), "complex64 values"),
    (lambda path: np.save(path, np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True), "not a readable"),
    (lambda path: np.save(path, np.ones(7, dtype=np.float32)), r"shape \(7,\)"),
    (lambda path: path.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
                                   b"'shape': (1000000000000, 16), }" + b" " * 54 + b"\n"), "not a readable"),
])
def test_a_bad_feature_file_in_conversion_is_named(tmp_path, spoil, message):
    from sac_minimal.data.convert import convert_two_stream

    source = _two_stream_release(tmp_path / "release")
    bad = source / "features" / "test" / "flow" / "video_test_1.npy"
    spoil(bad)
    with pytest.raises(ValueError, match=message) as error:
        convert_two_stream(source, tmp_path / "out")
    assert "video_test_1.npy" in str(error.value) and "allow_pickle" not in str(error.value)


def test_a_release_with_no_paired_video_is_refused_with_a_message(tmp_path):
    from sac_minimal.data.convert import convert_two_stream

    source = tmp_path / "release"
    for stream in ("rgb", "flow"):
        (source / "features" / "test" / stream).mkdir(parents=True)
    with pytest.raises(ValueError, match="no video of .* has both"):
        convert_two_stream(source, tmp_path / "out")


def test_the_headroom_control_on_real_format_data_is_refused(tmp_path, capsys):
    """Before: train --model headroom --data <a real-format folder> trained SSAD and labelled it headroom."""
    root = write_tiny_dataset(tmp_path / "real", TINY)
    assert cli(["train", "--model", "headroom", "--data", str(root), "--epochs", "1",
                "--run-dir", str(tmp_path / "run")]) == 2
    assert "is not a surrogate (real videos have no uncorrupted version)" in capsys.readouterr().err
    assert not (tmp_path / "run" / "result.json").exists()


def test_a_grid_that_cannot_test_its_hypotheses_is_refused_before_training(tmp_path, monkeypatch):
    """Before: ablate acceptance_v4 --heterogeneity 1 trained every run, then failed with a KeyError; --seeds 1 on
    one world trained, then refused. After: refused before the first run, saying what to change."""
    import sac_minimal.lab.experiments as experiments
    from sac_minimal.lab.variants import EXPERIMENTS

    def never(*args, **kwargs):
        raise AssertionError("a grid that cannot be tested started training")

    monkeypatch.setattr(experiments, "fit_runs", never)
    base = profile("quick", device="cpu")
    with pytest.raises(ValueError, match="tests at h = 0, 0.5, which this grid does not run"):
        run_experiment(EXPERIMENTS["acceptance_v4"], base, tmp_path / "a", checkpoints_dir=tmp_path / "runs",
                       heterogeneities=(1.0,))
    assert not (tmp_path / "runs").exists()
    assert cli(["ablate", "acceptance_v4", "--worlds", "100", "--seeds", "1"]) == 2  # refused before training


def test_an_absurd_heterogeneity_is_refused_with_a_message(tmp_path, capsys):
    """Before: data synth --heterogeneity 1e300 ended in an OverflowError."""
    assert cli(["data", "synth", "--root", str(tmp_path / "s"), "--size", "tiny", "--heterogeneity", "1e300"]) == 2
    assert "heterogeneity must be a number from 0 to 8" in capsys.readouterr().err


@pytest.mark.parametrize("edit, named", [
    (lambda videos, name: videos[name].update(reliability=["x", 0.5]), "reliability must be two numbers > 0"),
    (lambda videos, name: videos[name].update(reliability=[0.0, 1.0]), "reliability must be two numbers > 0"),
    (lambda videos, name: videos.pop(name), "no entry in synthetic.json"),
])
def test_a_garbled_truth_is_refused_by_the_controls_and_reported_by_data_check(tmp_path, capsys, edit, named):
    """Before: a reliability that is a string gave an IndexError, a missing video a KeyError, and reliabilities of 0
    passed ``data check``. After: training refuses a truth that is not the one the generator wrote (its digest), and
    ``data check`` names the file, the video and what is wrong."""
    from sac_minimal.data.synthetic import write_synthetic_thumos

    root = tmp_path / "tiny"
    write_synthetic_thumos(root, "tiny", seed=0, version=4)
    metadata = json.loads((root / "synthetic.json").read_text())
    name = sorted(metadata["videos"])[0]
    edit(metadata["videos"], name)
    (root / "synthetic.json").write_text(json.dumps(metadata))
    assert cli(["train", "--model", "privileged", "--data", str(root), "--data-version", "4", "--world", "0",
                "--epochs", "1", "--run-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "truth in its synthetic.json" in error and "not the one the generator wrote" in error
    assert "data synth" in error
    report = check_dataset(root)
    assert any(named in problem and name in problem for problem in report.problems), report.problems


@pytest.mark.parametrize("model", ["privileged", "ssad"])
def test_an_edited_truth_or_feature_file_is_refused_and_a_cache_of_either_is_written_again(tmp_path, capsys, model):
    """Before: emptying every video's corruptions in synthetic.json left a cache "current" and ``train --model
    privileged`` trained on the edited truth, and a surrogate given with ``--data`` whose features were edited after
    writing passed ``data check`` and trained. After: the truth has a digest beside the files' fingerprint; a cache
    with either edited is written again, a given folder is refused by ``train`` and reported by ``data check``."""
    from sac_minimal.data.synthetic import ensure_synthetic_thumos, is_current, read_synthetic_metadata

    root = tmp_path / "tiny"
    ensure_synthetic_thumos(root, "tiny", seed=0, version=4)
    original = (root / "synthetic.json").read_text()
    metadata = json.loads(original)
    assert any(entry["corruptions"] for entry in metadata["videos"].values())
    for entry in metadata["videos"].values():
        entry["corruptions"] = []
    (root / "synthetic.json").write_text(json.dumps(metadata))
    assert not is_current(root, read_synthetic_metadata(root), 4, "tiny", 0, 1.0)
    assert check_dataset(root).problems == ["synthetic.json: the truth in its synthetic.json (conditions, "
                                            "reliabilities, corrupted stretches) is not the one the generator wrote"]
    assert cli(["train", "--model", model, "--data", str(root), "--data-version", "4", "--world", "0",
                "--epochs", "1", "--run-dir", str(tmp_path / "run")]) == 2
    assert "not the one the generator wrote" in capsys.readouterr().err and not (tmp_path / "run").exists()
    ensure_synthetic_thumos(root, "tiny", seed=0, version=4)  # a cache: written again
    assert json.loads((root / "synthetic.json").read_text())["videos"] == json.loads(original)["videos"]
    feature = sorted((root / "i3d_features").glob("*.npy"))[0]
    values = np.load(feature)
    values[3, 5] += 0.5
    np.save(feature, values)
    assert any("fingerprint" in problem for problem in check_dataset(root).problems)
    assert cli(["train", "--model", model, "--data", str(root), "--data-version", "4", "--world", "0",
                "--epochs", "1", "--run-dir", str(tmp_path / "run")]) == 2
    assert "feature or annotation files are not the ones the generator wrote" in capsys.readouterr().err


def test_a_surrogate_without_its_metadata_is_refused_and_named(tmp_path, capsys):
    """Before: a v5 surrogate copied without synthetic.json and given with ``--data`` trained ``ssad_sac`` as a
    plain folder (no acceptance guard, no truth). After: refused, saying what is missing; ``data check`` names it."""
    from sac_minimal.data.synthetic import write_synthetic_thumos

    root = tmp_path / "v5"
    write_synthetic_thumos(root, "tiny", seed=0, version=5)
    (root / "synthetic.json").unlink()
    assert cli(["train", "--model", "ssad_sac", "--data", str(root), "--epochs", "1",
                "--run-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "surrogate written by this package" in error and "without its synthetic.json" in error
    assert not (tmp_path / "run").exists()
    assert any("synthetic.json is missing" in problem for problem in check_dataset(root).problems)


def test_bench_ot_refuses_a_size_it_could_not_allocate(capsys):
    """Before: ``bench ot --batches 100000 --lengths 100000`` died in the allocator. After: a one-line error."""
    assert cli(["bench", "ot", "--batches", "100000", "--lengths", "100000"]) == 2
    assert "choose smaller --batches or --lengths" in capsys.readouterr().err


def test_an_acceptance_grid_on_a_dataset_that_is_not_a_surrogate_is_refused_before_training(tmp_path, capsys):
    """Before: ``ablate acceptance_v4 --data <real folder>`` trained every run, then said "this grid declares no
    hypotheses". After: refused before anything trains, saying why."""
    root = tmp_path / "real"
    write_tiny_dataset(root, TINY)
    assert cli(["ablate", "acceptance_v4", "--profile", "quick", "--data", str(root), "--name", "x",
                "--epochs", "1"]) == 2
    assert "has no truth to read" in capsys.readouterr().err
    from sac_minimal.data.locate import REPOSITORY

    assert not (REPOSITORY / "results" / "x").exists()  # nothing claimed, nothing trained


def test_a_grid_on_a_given_surrogate_of_another_world_runs_and_leaves_out_the_headroom(tmp_path, capsys, monkeypatch):
    """Before: a grid with ``--data`` on a surrogate of world 5 and ``--worlds 5`` failed naming world 0, which the
    user never passed, and any grid with a headroom row failed on ``--data`` naming h = 0. After: it runs on that
    world, and the headroom row is left out with the reason."""
    from sac_minimal.data.synthetic import write_synthetic_thumos

    root = tmp_path / "surrogate"
    write_synthetic_thumos(root, "tiny", seed=5, version=3)
    small = Experiment(("ssad", "headroom"), (("ssad", "headroom"),), "x", seeds=2, worlds=(5,))
    base = profile("quick", data_root=str(root), data_size="tiny", epochs=1, base_channels=16, main_channels=32,
                   device="cpu")
    paths = run_experiment(small, base, tmp_path / "results", checkpoints_dir=tmp_path / "runs", worlds=(5,),
                           heterogeneities=(1.0,))
    assert [path.stem for path in paths] == ["ssad_w5_h1_s0", "ssad_w5_h1_s1"] and all(path.exists() for path in paths)
    assert "headroom" in capsys.readouterr().out


def test_impossible_sizes_and_ctrl_c_end_in_a_message_not_a_traceback(capsys, monkeypatch):
    """Before: ``bench train --runs 1000000`` and Ctrl-C ended in tracebacks."""
    with pytest.raises(SystemExit) as stopped:
        cli(["bench", "train", "--runs", "1000000"])
    assert stopped.value.code == 2 and "a number of runs trained at once, 1 to 64" in capsys.readouterr().err
    import sac_minimal.lab.bench as bench

    def interrupted(**options):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "bench_train", interrupted)  # Ctrl-C in the middle of the command's work
    assert cli(["bench", "train"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "run the same command again to resume" in err and "Traceback" not in err


def test_a_symlinked_record_folder_is_refused_before_anything_is_written(quick, tmp_path):
    """Before: with results/<name> a symbolic link, grid.json and every run file were written into its target
    before the refusal."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "record").symlink_to(target)
    with pytest.raises(ValueError, match="is a symbolic link"):
        run_experiment(ONE, quick(epochs=1), tmp_path / "record", checkpoints_dir=tmp_path / "runs")
    assert not any(target.iterdir()) and not (tmp_path / "runs").exists()


def test_a_damaged_cache_says_to_delete_it_not_to_choose_another_folder(tmp_path, monkeypatch):
    """Before: a cached surrogate with damaged metadata told the user to "choose another folder", a folder the
    package had chosen, not the user."""
    from sac_minimal.data.locate import synthetic_root

    monkeypatch.setenv("SAC_MINIMAL_DATA", str(tmp_path))
    root = synthetic_root("tiny", seed=7, create=False)
    root.mkdir(parents=True)
    (root / "synthetic.json").write_text("{ not json")
    with pytest.raises(FileExistsError, match="delete that folder and it is written again") as refused:
        synthetic_root("tiny", seed=7)
    assert "Choose another folder" not in str(refused.value)


def test_a_grid_on_a_given_surrogate_of_a_confirmatory_world_runs_on_that_world(tmp_path, monkeypatch):
    """Before: a grid on an explicit ``--data`` surrogate of a confirmatory world was refused with a message blaming
    ``--worlds`` (the base config's world 0 was resolved first), so such grids could not run."""
    from sac_minimal.data.synthetic import ensure_synthetic_thumos
    from sac_minimal.lab.variants import EXPERIMENTS

    monkeypatch.setenv("SAC_MINIMAL_DATA", str(tmp_path / "data"))
    folder = tmp_path / "world110"
    ensure_synthetic_thumos(folder, size="tiny", seed=110, version=4, heterogeneity=1.0)
    base = profile("quick", data_root=str(folder), data_size="tiny", epochs=1, base_channels=16, main_channels=32,
                   device="cpu")
    paths = run_experiment(EXPERIMENTS["controls_v4"].without(("privileged_window", "privileged_video")), base,
                           tmp_path / "record", checkpoints_dir=tmp_path / "runs", seeds=range(2))
    assert paths and all(path.exists() and "_w110_h1_" in path.name for path in paths)
