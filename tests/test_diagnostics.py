"""Attention diagnostics against known answers, and the OT collapse on SAC's own loss."""

import itertools

import numpy as np
import pytest
import torch

from sac_minimal.data.synthetic import read_synthetic_metadata
from sac_minimal.data.windows import WindowDataset
from sac_minimal.lab.diagnostics import (
    appearance_share_drift,
    attention_diagnostics,
    roc_auc,
    train_on_sac_losses,
    window_truth,
)
from sac_minimal.sac import SAC, SACConfig


def test_roc_auc_equals_the_pairwise_probability():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0)
             for a, b in itertools.product(scores[positive], scores[~positive])]
    assert roc_auc(scores, positive) == pytest.approx(np.mean(pairs))
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_auc([0.1, 0.2], [True, True])


def test_diagnostics_on_attention_that_knows_the_answer():
    log_ratio = np.linspace(-1, 1, 8)
    truth = {"log_ratio": log_ratio, "condition": np.array(["clean"] * 4 + ["far_camera"] * 4, dtype=object),
             "action": np.tile([True, False, False, True], (8, 1)), "reliability_factor": np.ones((8, 4))}
    truth["reliability_factor"][:, 2] = 0.3
    share = 1 / (1 + np.exp(-3 * log_ratio))  # more appearance where appearance is the more reliable
    frame = np.where(truth["action"], 0.9, 0.2) * truth["reliability_factor"]
    result = attention_diagnostics(np.stack([share, 1 - share], 1), frame, truth)
    assert result["share_spearman"] == pytest.approx(1.0)
    assert result["share_by_condition"]["clean"] < 0.5 < result["share_by_condition"]["far_camera"]
    assert result["frame_auc_action"] == 1.0
    assert result["frame_ratio_corrupted"] == pytest.approx(0.06 / ((0.9 + 0.9 + 0.2) / 3))
    assert result["frame_spearman_reliability"] > 0
    collapsed = attention_diagnostics(np.tile([[0.99, 0.01]], (8, 1)), None, truth)
    assert collapsed["median_max_share"] == pytest.approx(0.99)
    assert collapsed["share_spearman"] is None  # a constant share has no rank correlation
    assert "frame_auc_action" not in collapsed


def test_window_truth_reads_the_surrogate(surrogate):
    windows = WindowDataset(surrogate, "test")
    metadata = read_synthetic_metadata(surrogate)
    truth = window_truth(windows, metadata)
    first = windows.table.videos[windows.table.video_index[0]]
    reliability = metadata["videos"][first.video]["reliability"]
    assert truth["log_ratio"][0] == pytest.approx(np.log(reliability[0] / reliability[1]))
    assert truth["condition"][0] == metadata["conditions"][first.video]
    assert truth["action"].shape == (len(windows), 128) and 0.05 < truth["action"].mean() < 0.6
    assert 0 < (truth["reliability_factor"] < 1).mean() < 0.3


def test_official_ot_collapses_the_modality_attention_on_sac_losses_alone():
    """The finding of notebook 05: SAC's own loss alone drives a_m to one modality and S to zero (official)."""
    generator = torch.Generator().manual_seed(0)
    appearance, motion = torch.randn(16, 16, 64, generator=generator), torch.randn(16, 16, 64, generator=generator)
    torch.manual_seed(0)
    official = train_on_sac_losses(SAC(SACConfig.official(appearance_channels=16, motion_channels=16)),
                                   appearance, motion, steps=120, learning_rate=1e-2)
    assert official[0]["max_share"] < 0.9 and official[-1]["max_share"] > 0.95
    assert official[-1]["ot"] < 0.01 * official[0]["ot"] and official[-1]["structure_mean"] < 0.01


def test_stabilised_ot_cuts_the_direct_path_to_the_modality_attention():
    """With a_m detached inside the transport problem, L_OT sends no gradient to the modality head; with the
    softmax S the two costs of a frame sum to 1, so S cannot shrink to zero."""
    appearance, motion = torch.randn(4, 6, 32), torch.randn(4, 6, 32)
    gradients = {}
    for name, preset in (("official", SACConfig.official), ("stabilised", SACConfig.stabilised)):
        torch.manual_seed(0)
        sac = SAC(preset(appearance_channels=6, motion_channels=6, projection=False, modulate="raw")).train()
        output = sac(appearance, motion)
        output.losses["ot"].backward()
        gradients[name] = sac.modality_attention.score.weight.grad
        if name == "stabilised":
            assert torch.allclose(output.structure.sum(1), torch.ones(4, 32))
    assert gradients["official"].abs().max() > 1e-6
    assert gradients["stabilised"] is None or gradients["stabilised"].abs().max() == 0


def test_a_run_records_where_its_modality_attention_went(quick, tmp_path):
    """Every SAC run with a modality attention records its mean appearance share at its start (rebuilt from its
    seed) and at its end, on the test windows."""
    from sac_minimal.lab.train import Detector, fit

    config = quick(model="ssad_sac", epochs=1)
    result = fit(config, tmp_path / "run")
    share = result.extra["appearance_share"]
    windows = WindowDataset(config.data_root, "test")
    start = Detector(config, 64, 64).sac
    assert share["start"] == pytest.approx(appearance_share_drift(start, start, windows)["final"])
    assert share["drift"] == pytest.approx(share["final"] - share["start"]) and share["drift"] != 0
    assert "appearance_share" not in fit(quick(model="ssad", epochs=1), tmp_path / "ssad").extra


def test_map_by_condition_scores_each_condition_on_its_own_videos():
    from sac_minimal.data.thumos14 import CLASS_ID, VideoRecord
    from sac_minimal.detection import Detections
    from sac_minimal.lab.diagnostics import map_by_condition

    jump = CLASS_ID["HighJump"]
    truth = [VideoRecord(name, "test", 30.0, 60.0, 1800, np.array([[10.0, 20.0]]), np.array([jump]))
             for name in ("clean_video", "far_video", "other_video")]
    metadata = {"videos": {"clean_video": {"condition": "clean"}, "far_video": {"condition": "far_camera"},
                           "other_video": {"condition": "clean"}}}
    # clean videos found exactly; the far-camera video's only detection misses its action
    detections = Detections(videos=("clean_video", "far_video", "other_video"), video_index=np.array([0, 1, 2]),
                            labels=np.array([jump, jump, jump]),
                            segments=np.array([[10.0, 20.0], [40.0, 50.0], [10.0, 20.0]]),
                            scores=np.array([0.5, 0.9, 0.6]))
    result = map_by_condition(detections, truth, metadata)
    assert result == {"clean": pytest.approx(1.0), "far_camera": pytest.approx(0.0)}  # no look-alike video


def test_the_privileged_share_of_a_window_follows_its_videos_clean_shares():
    from sac_minimal.data.synthetic import CLEAN_RELIABILITY
    from sac_minimal.lab.diagnostics import privileged_appearance_share

    reliability = np.array([[1.0, 1.0], [1.0, CLEAN_RELIABILITY / 2], [CLEAN_RELIABILITY / 4, 2.0]])
    share = privileged_appearance_share({"reliability": reliability})
    # clean video: equal weights; far camera (motion at half the clean level): 1 / (1 + 1/4); look-alike: 1/16
    assert share == pytest.approx([0.5, 0.8, (1 / 16) / (1 + 1 / 16)])


def test_window_and_step_shares_are_measured_against_the_privileged_controls_weights():
    from sac_minimal.lab.diagnostics import attention_diagnostics, window_share_truth

    step_weights = np.zeros((3, 4, 2))
    step_weights[0] = [1.0, 0.0]  # motion misleads for the whole window
    step_weights[1] = [0.0, 1.0]  # appearance misleads
    step_weights[2] = [[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]  # clean, then motion misleads
    target, state = window_share_truth(step_weights)
    np.testing.assert_allclose(target, [1.0, 0.0, 0.8])
    assert state.tolist() == [1, 2, 1]
    truth = {"step_weights": step_weights, "log_ratio": np.zeros(3), "condition": np.array(["clean"] * 3)}
    exact = attention_diagnostics(np.stack([target, 1 - target], axis=1), None, truth)
    assert exact["share_error_window"] == pytest.approx(0.0) and exact["share_spearman_window"] == pytest.approx(1)
    assert exact["share_by_state"]["motion_misleads"] == {"attention": pytest.approx(0.9),
                                                          "truth": pytest.approx(0.9), "windows": 2}
    level = attention_diagnostics(np.stack([0.5 + 0.1 * target, 0.5 - 0.1 * target], axis=1), None, truth)
    assert level["share_spearman_window"] == pytest.approx(1) and level["share_error_window"] > 0.2  # rank, not level
    per_window = np.repeat(target[:, None], 4, axis=1)  # a_m a_f^T: one split for every step of a window
    per_step = np.where(step_weights.sum(-1) > 0, step_weights[..., 0] / step_weights.sum(-1), 0.5)
    composed = attention_diagnostics(None, None, truth, per_window)["step_share_spearman"]
    per_frame = attention_diagnostics(None, None, truth, per_step)["step_share_spearman"]
    assert per_frame == pytest.approx(1.0) and composed < per_frame
