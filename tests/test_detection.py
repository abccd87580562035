"""SSAD, anchors, losses, post-processing and evaluation: known answers and loop-based references."""

import warnings

import numpy as np
import pytest
import torch

from sac_minimal.anchors import ANCHOR_RATIOS, LEVEL_CELLS, decode, default_anchors, match_anchors, temporal_iou
from sac_minimal.data.locate import reference_annotation_file
from sac_minimal.data.thumos14 import CLASS_ID, THUMOS14_CLASSES, VideoRecord, load_annotations
from sac_minimal.detection import Detections, batched_nms, postprocess, ssad_loss
from sac_minimal.evaluation import evaluate_detections, ground_truth_detections, interpolated_average_precision
from sac_minimal.ssad import SSAD

REAL_ANNOTATIONS = reference_annotation_file()


def video(name, segments, labels, fps=30.0, duration=100.0):
    return VideoRecord(video=name, split="test", fps=fps, duration=duration, num_frames=round(duration * fps),
                       segments=np.asarray(segments, dtype=np.float64).reshape(-1, 2),
                       labels=np.asarray([CLASS_ID[label] for label in labels], dtype=np.int64))


def detections(rows, videos):
    """rows: (video name, label, start, end, score)."""
    names = tuple(videos)
    return Detections(videos=names, video_index=np.array([names.index(row[0]) for row in rows]),
                      labels=np.array([CLASS_ID[row[1]] for row in rows]),
                      segments=np.array([[row[2], row[3]] for row in rows], dtype=np.float64),
                      scores=np.array([row[4] for row in rows], dtype=np.float64))


# ---------------------------------------------------------------- SSAD and anchors


def test_ssad_shapes_parameters_and_init():
    model = SSAD()
    assert model(torch.randn(2, 2048, 128)).shape == (2, 140, 24)
    assert sum(parameter.numel() for parameter in model.parameters()) == 7_829_864  # the official SSAD: about 7.8 M (book/recipe.md)
    assert all(torch.count_nonzero(module.bias) == 0 for module in model.modules() if isinstance(module, torch.nn.Conv1d))
    with pytest.raises(ValueError, match=r"\[B, 2048, T\]"):
        model(torch.randn(2, 1024, 128))
    with pytest.raises(ValueError, match="T = 128"):
        model(torch.randn(2, 2048, 100))
    assert SSAD(in_channels=128)(torch.randn(1, 128, 128)).shape == (1, 140, 24)


def test_ssad_output_rows_follow_the_anchor_order():
    """Row r of the output must belong to anchor r: the head's channels are (ratio, value) per cell."""
    model = SSAD(in_channels=8)
    for head in model.heads:
        torch.nn.init.zeros_(head.weight)
        with torch.no_grad():
            head.bias.copy_(torch.arange(head.bias.numel(), dtype=torch.float32))
    output = model(torch.randn(1, 8, 128))[0].detach()
    anchors = default_anchors()
    values = model.values_per_anchor
    expected_ratio = torch.arange(len(ANCHOR_RATIOS)).repeat(sum(LEVEL_CELLS))
    np.testing.assert_array_equal(output[:, 0].numpy(), (expected_ratio * values).numpy())
    assert len(anchors) == output.shape[0] == 140
    np.testing.assert_allclose(anchors.widths[:5].numpy(), np.array(ANCHOR_RATIOS) / 16, rtol=1e-6)
    np.testing.assert_allclose(anchors.centers[[0, 5, 80, 120]].numpy(), [1 / 32, 3 / 32, 1 / 16, 1 / 8], rtol=1e-6)


def test_decode_and_iou_known_answers():
    anchors = default_anchors()
    boxes = decode(torch.zeros(len(anchors), 2), anchors)
    torch.testing.assert_close(boxes, anchors.boxes())
    offsets = torch.zeros(len(anchors), 2)
    offsets[0] = torch.tensor([10.0, 10 * np.log(2.0)])  # shift by one width, double the width
    start, end = decode(offsets, anchors)[0]
    center, width = anchors.centers[0] + anchors.widths[0], 2 * anchors.widths[0]
    torch.testing.assert_close(torch.stack([start, end]), torch.stack([center - width / 2, center + width / 2]))
    iou = temporal_iou(torch.tensor([[0.0, 0.4]]), torch.tensor([[0.2, 0.6], [0.5, 0.7], [0.0, 0.4]]))
    torch.testing.assert_close(iou, torch.tensor([[1 / 3, 0.0, 1.0]]))


def test_matching_decoded_versus_static():
    """The official code matches the DECODED predicted boxes; static matching uses the default anchors."""
    anchors = default_anchors()
    segments = torch.tensor([[[0.3, 0.4]]])
    labels = torch.tensor([[CLASS_ID["LongJump"]]])
    target = 0  # the first anchor [0, 0.0625] overlaps nothing, until its offsets move it onto the segment
    offsets = torch.zeros(1, len(anchors), 2)
    offsets[0, target] = torch.tensor([(0.35 - anchors.centers[0]) / (anchors.widths[0] * 0.1),
                                       10 * torch.log(torch.tensor(0.1) / anchors.widths[0])])
    decoded = match_anchors(decode(offsets, anchors), segments, labels)
    static = match_anchors(anchors.boxes()[None], segments, labels)
    assert decoded.positive[0, target] and decoded.labels[0, target] == CLASS_ID["LongJump"] + 1
    assert torch.isclose(decoded.iou[0, target], torch.tensor(1.0), atol=1e-5)
    assert not static.positive[0, target] and static.labels[0, target] == 0
    best_static = static.iou[0].argmax()
    assert static.iou[0, best_static] == temporal_iou(anchors.boxes()[best_static][None], segments[0]).max()
    assert ((static.labels[0] > 0) == (static.iou[0] > 0.5)).all()
    torch.testing.assert_close(static.boxes[0, best_static], segments[0, 0])


def test_loss_terms_positives_and_no_positives():
    torch.manual_seed(0)
    model = SSAD(in_channels=16)
    raw = model(torch.randn(3, 16, 128))
    anchors = default_anchors()
    segments = torch.tensor([[[0.1, 0.3], [0.0, 0.0]], [[0.5, 0.6], [0.7, 0.95]], [[0.0, 0.0], [0.0, 0.0]]])
    labels = torch.tensor([[2, -1], [4, 7], [-1, -1]])
    losses = ssad_loss(raw, segments, labels, anchors, matching="static", generator=torch.Generator().manual_seed(1))
    assert losses["positives"] > 0 and all(torch.isfinite(losses[key]) for key in ("classification", "total"))
    expected = losses["classification"] + 10 * losses["overlap"] + 10 * losses["localisation"]
    torch.testing.assert_close(losses["total"], expected)
    losses["total"].backward()
    assert all(torch.isfinite(parameter.grad).all() for parameter in model.parameters())
    empty = ssad_loss(model(torch.randn(2, 16, 128)), torch.zeros(2, 3, 2), torch.full((2, 3), -1), anchors)
    assert empty["positives"] == 0 and all(torch.isfinite(empty[key]) for key in ("classification", "overlap",
                                                                                   "localisation", "total"))
    assert empty["localisation"] == 0
    empty["total"].backward()


def test_random_negatives_are_sized_and_follow_the_priority():
    anchors = default_anchors()
    raw = torch.zeros(2, 140, 24)
    raw[..., -3] = -5.0  # no hard negatives
    segments, labels = torch.tensor([[[0.2, 0.45]], [[0.5, 0.7]]]), torch.tensor([[1], [3]])
    from sac_minimal.detection import select_negatives

    positive = match_anchors(anchors.boxes()[None].expand(2, -1, -1), segments, labels).positive[None]
    priority = torch.rand(positive.shape, generator=torch.Generator().manual_seed(5))
    hard, chosen = select_negatives(positive, raw[None, ..., -3], 1.0, priority, rule="count")
    assert not hard.any() and int(chosen.sum()) == int(positive.sum()) and not (chosen & positive).any()
    # the chosen ones are the highest-priority non-positive anchors
    threshold = priority[chosen].min()
    assert (priority[~positive & ~chosen] < threshold).all()
    # twice the ratio: twice as many; more than available: all remaining anchors
    doubled = select_negatives(positive, raw[None, ..., -3], 2.0, priority, "count")[1]
    assert int(doubled.sum()) == 2 * int(positive.sum())
    assert bool((select_negatives(positive, raw[None, ..., -3], 1e6, priority, "count")[1] == ~positive).all())
    # official: each remaining anchor with probability r = ratio x N_pos / (N - N_pos - N_hard), from its priority
    official = select_negatives(positive, raw[None, ..., -3], 1.0, priority)[1]
    rate = int(positive.sum()) / (positive.numel() - int(positive.sum()))
    assert bool((official == (~positive & (priority > 1 - rate))).all())
    assert bool((select_negatives(positive, raw[None, ..., -3], 1e6, priority)[1] == ~positive).all())  # r capped at 1


def reference_loss(raw, segments, labels, anchors, priority, negative_ratio):
    """The book's first loss (``book_v1``) written with boolean indexing, one model at a time (what the masked
    version must equal). The official loss has its own independent reference: tests/test_official_loss.py."""
    from sac_minimal.anchors import decode

    overlap_raw, boxes = raw[..., -3], decode(raw[..., -2:], anchors)
    targets = match_anchors(boxes.detach(), segments, labels)
    hard = ~targets.positive & (overlap_raw > 0.5)
    remaining = ~targets.positive & ~hard
    wanted = min(round(negative_ratio * int(targets.positive.sum())), int(remaining.sum()))
    ranked = torch.where(remaining, priority, torch.full_like(priority, -1.0)).flatten().topk(wanted).indices
    random_negative = torch.zeros_like(remaining).flatten()
    random_negative[ranked] = True
    selected = targets.positive | hard | random_negative.view_as(remaining)
    classification = torch.nn.functional.cross_entropy(raw[..., :-3][selected], targets.labels[selected])
    overlap = torch.nn.functional.smooth_l1_loss(overlap_raw[selected], targets.iou[selected])
    localisation = torch.nn.functional.smooth_l1_loss(boxes[targets.positive], targets.boxes[targets.positive])
    return classification, overlap, localisation


def test_loss_of_several_runs_equals_indexed_reference():
    from sac_minimal.detection import ssad_loss_runs

    generator = torch.Generator().manual_seed(3)
    anchors = default_anchors()
    raw = torch.randn(3, 2, 140, 24, generator=generator)  # 3 runs x 2 windows
    segments = torch.tensor([[0.1, 0.3], [0.5, 0.9]]).expand(3, 2, 2, 2).clone()
    segments[1, 0] = torch.tensor([[0.2, 0.25], [0.6, 0.62]])
    labels = torch.tensor([[4, 9], [0, -1]]).expand(3, 2, 2).clone()
    priority = torch.rand(3, 2, 140, generator=generator)
    losses = ssad_loss_runs(raw, segments, labels, anchors, priority, negative_ratio=1.5, loss="book_v1")
    for run in range(3):
        expected = reference_loss(raw[run], segments[run], labels[run], anchors, priority[run], 1.5)
        got = (losses["classification"][run], losses["overlap"][run], losses["localisation"][run])
        torch.testing.assert_close(torch.stack(got), torch.stack(expected), rtol=1e-6, atol=1e-7)
    # the one-model entry point is the same computation with its own draw of priorities
    single = ssad_loss(raw[0], segments[0], labels[0], anchors, generator=torch.Generator().manual_seed(0),
                       loss="book_v1")
    priority_0 = torch.rand(2, 140, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(single["classification"],
                               reference_loss(raw[0], segments[0], labels[0], anchors, priority_0, 1.0)[0])


# ---------------------------------------------------------------- post-processing


def reference_nms(segments, scores, threshold, max_keep):
    order, kept = list(np.argsort(-scores, kind="stable")), []
    while order and len(kept) < max_keep:
        best = order.pop(0)
        kept.append(best)
        order = [index for index in order if _iou(segments[best], segments[index]) <= threshold]
    return kept


def _iou(a, b):
    intersection = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - intersection
    return intersection / union if union > 0 else 0.0


def test_nms_keeps_the_best_and_removes_only_overlaps_above_threshold():
    segments = np.array([[0.0, 10.0], [0.0, 12.5], [0.0, 11.0], [20.0, 30.0], [0.0, 10.0]])
    scores = np.array([0.9, 0.95, 0.5, 0.1, 0.99])
    groups = np.array([0, 0, 0, 0, 1])  # the last one is another class: never suppressed by group 0
    kept = set(batched_nms(groups, segments, scores, 0.2, 200).tolist())
    # 1 (best of group 0) suppresses 0 (IoU 0.8) and 2 (0.88); 3 does not overlap.
    assert kept == {1, 3, 4}
    exact = np.array([[0.0, 10.0], [8.0, 18.0 + 2.0 / 3.0]])  # IoU exactly 2 / 12 ... below 0.2: kept
    assert len(batched_nms(np.zeros(2, int), exact, np.array([1.0, 0.5]), 0.2, 10)) == 2
    at_threshold = np.array([[0.0, 10.0], [0.0, 2.0]])  # IoU exactly 0.2: kept (only > 0.2 is removed)
    assert len(batched_nms(np.zeros(2, int), at_threshold, np.array([1.0, 0.5]), 0.2, 10)) == 2
    rng = np.random.default_rng(0)
    for _ in range(5):
        start = rng.uniform(0, 100, 300)
        segments = np.stack([start, start + rng.uniform(0.5, 20, 300)], axis=1)
        scores, groups = rng.random(300), rng.integers(0, 4, 300)
        ours = batched_nms(groups, segments, scores, 0.2, 7)
        reference = [index for group in range(4) for index in
                     np.flatnonzero(groups == group)[reference_nms(segments[groups == group], scores[groups == group],
                                                                   0.2, 7)]]
        assert sorted(ours.tolist()) == sorted(reference)


def one_anchor_output(anchor, label, begin_frames):
    """Raw outputs of len(begin_frames) windows where only ``anchor`` is an action of ``label``."""
    raw = torch.zeros(len(begin_frames), 140, 24)
    raw[..., 0] = 10.0  # background everywhere
    raw[:, anchor, 0] = -10.0
    raw[:, anchor, 1 + label] = 10.0
    raw[:, anchor, -3] = 10.0
    return raw


@pytest.mark.parametrize("fps", [25.0, 29.97, 30.0])
def test_window_to_seconds_with_each_fps(fps):
    """Window units become seconds with each video's own fps (25, 29.97, 30)."""
    anchors = default_anchors()
    anchor = 130  # level AL3, cell 2: centre 0.625
    raw = one_anchor_output(anchor, CLASS_ID["HighJump"], [0, 256])
    result = postprocess(raw, anchors, window_video=np.array([0, 0]), begin_frame=np.array([0, 256]),
                         videos=["v"], fps=[fps])
    start, end = anchors.boxes()[anchor].clamp(0, 1).double().numpy() * 512
    expected = np.array([[start, end], [start + 256, end + 256]]) / fps
    np.testing.assert_allclose(np.sort(result.segments, axis=0), np.sort(expected, axis=0), rtol=1e-6)
    assert (result.labels == CLASS_ID["HighJump"]).all()


def test_cliff_diving_duplicated_as_diving_and_background_filtered():
    raw = one_anchor_output(20, CLASS_ID["CliffDiving"], [0])
    result = postprocess(raw, default_anchors(), window_video=np.array([0]), begin_frame=np.array([0]),
                         videos=["v"], fps=[30.0])
    assert sorted(THUMOS14_CLASSES[label] for label in result.labels) == ["CliffDiving", "Diving"]
    np.testing.assert_array_equal(result.segments[0], result.segments[1])
    off = postprocess(raw, default_anchors(), window_video=np.array([0]), begin_frame=np.array([0]), videos=["v"],
                      fps=[30.0], duplicate_cliff_diving=False)
    assert len(off) == 1


def test_postprocess_caps_per_video_and_scores():
    rng = np.random.default_rng(0)
    raw = torch.from_numpy(rng.standard_normal((40, 140, 24)).astype(np.float32))
    result = postprocess(raw, default_anchors(), window_video=np.repeat([0, 1], 20),
                         begin_frame=np.tile(np.arange(20) * 256, 2), videos=["a", "b"], fps=[30.0, 25.0],
                         durations=[200.0, 150.0])
    assert np.bincount(result.video_index).max() <= 200
    assert (result.scores > 0).all() and (result.scores <= 1).all()
    assert result.segments[result.video_index == 1].max() <= 150.0
    document = result.to_json()
    assert Detections.from_json(document).segments.shape == result.segments.shape


# ---------------------------------------------------------------- evaluation


def reference_average_precision(detections_rows, ground_truth, label, threshold):
    """ActivityNet's algorithm written with loops: (video, label, start, end, score) rows."""
    gts = [(index, video.video, segment) for index, video in enumerate(ground_truth)
           for segment, gt_label in zip(video.segments, video.labels) if gt_label == label]
    rows = sorted([row for row in detections_rows if CLASS_ID[row[1]] == label], key=lambda row: -row[4])
    claimed, hits = set(), []
    for name, _, start, end, _ in rows:
        candidates = sorted(((_iou((start, end), segment), number) for number, (_, gt_video, segment)
                             in enumerate(gts) if gt_video == name), reverse=True)
        hit = False
        for iou, number in candidates:
            if iou < threshold:
                break
            if number in claimed:
                continue
            claimed.add(number)
            hit = True
            break
        hits.append(hit)
    if not rows:
        return 0.0
    true_positive = np.cumsum(hits)
    return interpolated_average_precision(true_positive / np.arange(1, len(rows) + 1), true_positive / len(gts))


def test_hand_computed_average_precision():
    ground_truth = [video("v1", [[10, 20], [30, 40]], ["HighJump", "HighJump"]),
                    video("v2", [[5, 8]], ["HighJump"]),
                    video("v3", [[0, 4]], ["Billiards"])]
    rows = [("v1", "HighJump", 11, 21, 0.9),     # tIoU 9/11 = 0.82 with [10, 20]
            ("v1", "HighJump", 10.5, 19.5, 0.8),  # a duplicate of the same segment, tIoU 0.9
            ("v1", "HighJump", 50, 60, 0.7),      # nothing there
            ("v1", "HighJump", 30, 38, 0.6),      # tIoU 0.8 with [30, 40]; v2's instance is never found
            ("v1", "Billiards", 10, 20, 0.95),    # no Billiards in v1
            ("v3", "Billiards", 0, 4, 0.5),
            ("v9", "HighJump", 0, 1, 0.99)]       # a video without ground truth: dropped, counted
    result = evaluate_detections(detections(rows, ["v1", "v2", "v3", "v9"]), ground_truth, thresholds=(0.5, 0.85))
    high_jump, billiards = CLASS_ID["HighJump"], CLASS_ID["Billiards"]
    # tIoU 0.5: HighJump TP, FP, FP, TP with 3 instances -> recall 1/3 at precision 1, 2/3 at precision 1/2.
    assert result.average_precision[0, high_jump] == pytest.approx(1 / 3 * 1 + 1 / 3 * 0.5)
    # Billiards: FP then TP -> recall 1 at precision 1/2.
    assert result.average_precision[0, billiards] == pytest.approx(0.5)
    # tIoU 0.85: only the duplicate (0.9) matches: FP, TP, FP, FP -> recall 1/3 at precision 1/2.
    assert result.average_precision[1, high_jump] == pytest.approx(1 / 6)
    assert result.mean_ap[0] == pytest.approx(0.5) and result.dropped == 1
    assert np.isnan(result.average_precision[0, CLASS_ID["Diving"]])  # no ground truth: not averaged


def test_evaluation_matches_a_loop_reference_and_is_monotone():
    rng = np.random.default_rng(3)
    ground_truth, rows = [], []
    for index in range(12):
        count = rng.integers(1, 8)
        starts = np.sort(rng.uniform(0, 200, count))
        labels = rng.choice(["HighJump", "Diving", "Shotput"], count)
        ground_truth.append(video(f"v{index}", np.stack([starts, starts + rng.uniform(1, 10, count)], 1), labels))
        for segment, label in zip(ground_truth[-1].segments, labels):
            for _ in range(rng.integers(0, 4)):
                jitter = rng.normal(0, 1.5, 2)
                rows.append((f"v{index}", label, segment[0] + jitter[0], segment[1] + abs(jitter[1]) + 0.1,
                             float(rng.random())))
        for _ in range(5):
            start = rng.uniform(0, 200)
            rows.append((f"v{index}", str(rng.choice(["HighJump", "Diving", "Billiards"])), start,
                         start + rng.uniform(1, 10), float(rng.random())))
    thresholds = np.round(np.arange(0.1, 0.95, 0.1), 1)
    result = evaluate_detections(detections(rows, [f"v{index}" for index in range(12)]), ground_truth, thresholds)
    for label in ("HighJump", "Diving", "Shotput"):
        for index, threshold in enumerate(thresholds):
            assert result.average_precision[index, CLASS_ID[label]] == pytest.approx(
                reference_average_precision(rows, ground_truth, CLASS_ID[label], threshold), abs=1e-12)
    assert (np.diff(result.mean_ap) <= 1e-12).all()
    summary = result.summary()
    assert summary["Avg 0.1:0.7"] == pytest.approx(result.mean_ap[:7].mean())
    assert summary["Avg 0.3:0.7"] == pytest.approx(result.mean_ap[2:7].mean())


def test_ground_truth_as_detections_scores_one():
    ground_truth = [video("v1", [[10, 20], [30, 40], [10, 20]], ["CliffDiving", "HighJump", "Diving"]),
                    video("v2", [[5, 8]], ["HighJump"])]
    result = evaluate_detections(ground_truth_detections(ground_truth), ground_truth, thresholds=np.arange(1, 10) / 10)
    np.testing.assert_allclose(result.mean_ap, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = load_annotations(REAL_ANNOTATIONS).split("test")
    real = evaluate_detections(ground_truth_detections(test).to_json(), test)
    np.testing.assert_allclose(real.mean_ap, 1.0)


def test_evaluation_bad_inputs():
    """Unknown labels and thresholds outside (0, 1] raise clear errors."""
    ground_truth = [video("v1", [[10, 20]], ["HighJump"])]
    with pytest.raises(ValueError, match="'Juggling' is not a THUMOS14 class"):
        evaluate_detections({"results": {"v1": [{"label": "Juggling", "segment": [1, 2], "score": 1.0}]}},
                            ground_truth)
    with pytest.raises(ValueError, match="thresholds"):
        evaluate_detections(ground_truth_detections(ground_truth), ground_truth, thresholds=(0.0, 0.5))
    with pytest.raises(TypeError, match="results"):
        evaluate_detections({"database": {}}, ground_truth)
