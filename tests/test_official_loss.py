"""SSAD's official loss against an independent reference of the official training step.

The reference below is written from the official code's behaviour (``core/loss.py::loss_function_ab`` and
``core/ab_match.py::match_anchor_gt``, as book/recipe.md states them), with loops and the official code's own
order of operations: anchors built from their definition, decoded to (x, w), the ground-truth instances visited in
order with autograd on, the negatives drawn as Bernoulli(r) from one uniform number per anchor. It imports nothing
from ``sac_minimal`` but the loss under test, so an error in the package's anchors, decoding, IoU, matching or
masks cannot hide in both.
"""

import math

import pytest
import torch

from sac_minimal.anchors import default_anchors
from sac_minimal.detection import ssad_loss_runs

LEVELS, RATIOS = (16, 8, 4), (0.5, 0.75, 1.0, 1.5, 2.0)


def reference_anchors():
    """Centre (i + 0.5) / L and width r / L for every level, cell and ratio, in that order."""
    centres, widths = [], []
    for cells in LEVELS:
        for cell in range(cells):
            for ratio in RATIOS:
                centres.append((cell + 0.5) / cells)
                widths.append(ratio / cells)
    return torch.tensor(centres, dtype=torch.float64), torch.tensor(widths, dtype=torch.float64)


def smooth_l1(x):
    return torch.where(x.abs() < 1, 0.5 * x * x, x.abs() - 0.5)


def official_reference(raw, instances, uniform, negative_ratio=1.0):
    """The official loss of one batch.

    Args:
        raw: ``[B, A, 24]`` float64 outputs (class logits, overlap, rx, rw).
        instances: per window, a list of (start, end, class id) in window units, in annotation order.
        uniform: ``[B, A]`` one uniform number per anchor (the random negatives).

    Returns:
        (classification, overlap, localisation, total).
    """
    centres, widths = reference_anchors()
    logits, overlap, rx, rw = raw[..., :21], raw[..., 21], raw[..., 22], raw[..., 23]
    x = rx * widths * 0.1 + centres
    w = torch.exp(rw * 0.1) * widths
    xmin, xmax = x - w / 2, x + w / 2
    scores, labels, gt_min, gt_max = [], [], [], []
    for window, window_instances in enumerate(instances):
        score = torch.zeros(raw.shape[1], dtype=torch.float64)
        label = torch.zeros(raw.shape[1], dtype=torch.long)
        start = torch.zeros(raw.shape[1], dtype=torch.float64)
        end = torch.zeros(raw.shape[1], dtype=torch.float64)
        for begin, finish, class_id in window_instances:  # in order, autograd on
            inter = torch.clamp(torch.minimum(xmax[window], torch.tensor(finish, dtype=torch.float64))
                                - torch.maximum(xmin[window], torch.tensor(begin, dtype=torch.float64)), min=0)
            jaccard = inter / (w[window] - inter + (finish - begin))
            update = (jaccard > score) & (jaccard > 0.5)
            label = torch.where(update, torch.full_like(label, class_id + 1), label)
            start = torch.where(update, torch.full_like(start, begin), start)
            end = torch.where(update, torch.full_like(end, finish), end)
            score = torch.maximum(jaccard, score)
        scores.append(score)
        labels.append(label)
        gt_min.append(start)
        gt_max.append(end)
    score, label = torch.stack(scores).flatten(), torch.stack(labels).flatten()
    gt_min, gt_max = torch.stack(gt_min).flatten(), torch.stack(gt_max).flatten()
    logits, overlap = logits.reshape(-1, 21), overlap.flatten()
    xmin, xmax, uniform = xmin.flatten(), xmax.flatten(), uniform.flatten().double()
    pmask = score > 0.5
    hmask = (score <= 0.5) & (overlap > 0.5)
    total_anchors, positives, hard = score.numel(), int(pmask.sum()), int(hmask.sum())
    if positives > 0 and total_anchors > positives + hard:
        rate = negative_ratio * positives / (total_anchors - positives - hard)
    else:
        rate = 0.5
    rate = min(rate, 1.0)
    nmask = (uniform > 1 - rate) & ~pmask & ~hmask
    selected = pmask | hmask | nmask
    target = torch.where(pmask, label, torch.zeros_like(label))
    log_probability = torch.log_softmax(logits[selected], dim=-1)
    classification = -log_probability.gather(1, target[selected][:, None]).mean()
    overlap_term = smooth_l1(score[selected] - overlap[selected]).mean()
    if positives:
        localisation = (smooth_l1(xmin[pmask] - gt_min[pmask]).mean() + smooth_l1(xmax[pmask] - gt_max[pmask]).mean())
    else:
        localisation = torch.zeros((), dtype=torch.float64)
    return classification, overlap_term, localisation, classification + 10 * overlap_term + 10 * localisation


def package_loss(raw, instances, uniform, loss="official"):
    longest = max(1, max(len(window) for window in instances))
    segments = torch.zeros(len(instances), longest, 2, dtype=torch.float64)
    labels = torch.full((len(instances), longest), -1)
    for window, window_instances in enumerate(instances):
        for index, (begin, finish, class_id) in enumerate(window_instances):
            segments[window, index] = torch.tensor([begin, finish], dtype=torch.float64)
            labels[window, index] = class_id
    losses = ssad_loss_runs(raw[None], segments[None], labels[None], default_anchors(dtype=torch.float64),
                            uniform[None], loss=loss)
    return tuple(losses[name][0] for name in ("classification", "overlap", "localisation", "total"))


def aim(raw, anchor, begin, finish, jitter):
    """Offsets that decode ``anchor`` onto (begin, finish) moved by ``jitter`` (window units)."""
    centres, widths = reference_anchors()
    centre, width = (begin + finish) / 2 + jitter, (finish - begin) * (1 + 2 * abs(jitter))
    raw[anchor, 22] = (centre - centres[anchor]) / (widths[anchor] * 0.1)
    raw[anchor, 23] = 10 * math.log(width / widths[anchor])


def batch(seed):
    """Hand-built windows: several positives, hard negatives, two instances sharing a segment (CliffDiving and its
    Diving copy), boxes over a window's edge; and a window of no positive."""
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randn(4, 140, 24, generator=generator, dtype=torch.float64) * 0.5
    instances = [
        [(0.1, 0.2, 3), (0.3, 0.55, 12), (0.62, 0.7, 9)],          # several positives
        [(0.6, 0.7, 4), (0.6, 0.7, 7)],                             # CliffDiving (4) and Diving (7) share a segment
        [(0.0, 0.12, 1), (0.85, 1.0, 15)],                          # at both edges of the window
        [(0.4, 0.4006, 2)],                                         # far too short for any box: no positive
    ]
    aimed = ((0, 12, 0, 0.004), (0, 13, 0, -0.01), (0, 130, 1, 0.02), (0, 82, 1, 0.0), (0, 104, 2, 0.003),
             (1, 50, 0, 0.01), (1, 51, 1, -0.006), (1, 111, 0, 0.0), (2, 2, 0, -0.02), (2, 137, 1, 0.015),
             (2, 136, 1, 0.03))  # (window, anchor, instance, jitter)
    for window, anchor, instance, jitter in aimed:
        begin, finish, _ = instances[window][instance]
        aim(raw[window], anchor, begin, finish, jitter)
    raw[:, :, 21] = torch.where(torch.rand(4, 140, generator=generator) < 0.1, 0.9, raw[:, :, 21])  # hard ones
    uniform = torch.rand(4, 140, generator=generator, dtype=torch.float64)
    return raw, instances, uniform


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_official_loss_terms_and_gradient_match_the_reference(seed):
    raw, instances, uniform = batch(seed)
    reference_raw = raw.clone().requires_grad_()
    expected = official_reference(reference_raw, instances, uniform)
    expected[-1].backward()
    package_raw = raw.clone().requires_grad_()
    got = package_loss(package_raw, instances, uniform)
    got[-1].backward()
    for name, value, want in zip(("classification", "overlap", "localisation", "total"), got, expected):
        assert abs(value.item() - want.item()) <= 1e-10, (name, value.item(), want.item())
    gap = (package_raw.grad - reference_raw.grad).abs().max()
    assert gap <= 1e-10 * max(1.0, float(reference_raw.grad.abs().max())), float(gap)
    # the case list holds what it says: positives, hard negatives, the overlap target's gradient reaching rx, rw
    with torch.no_grad():
        no_target_gradient = raw.clone().requires_grad_()
    package_loss(no_target_gradient, instances, uniform, loss="official_detached")[-1].backward()
    assert (no_target_gradient.grad[..., 22:] - package_raw.grad[..., 22:]).abs().max() > 1e-3


def test_batch_without_a_positive_trains_about_half_its_anchors_as_background():
    raw, instances, uniform = batch(0)
    raw, instances, uniform = raw[3:], instances[3:], uniform[3:]
    classification, overlap, localisation, _ = package_loss(raw, instances, uniform)
    reference = official_reference(raw, instances, uniform)
    assert localisation == 0 and classification > 0
    assert abs(float(classification) - float(reference[0])) <= 1e-10
    # the book's first loss drew no random negative there: only the hard negatives' term
    assert package_loss(raw, instances, uniform, loss="book_v1")[0] != classification


def test_first_listed_of_two_equal_instances_keeps_the_anchor():
    from sac_minimal.anchors import match_anchors

    boxes = torch.tensor([[[0.6, 0.7], [0.1, 0.2]]], dtype=torch.float64)
    segments = torch.tensor([[[0.6, 0.7], [0.6, 0.7]]], dtype=torch.float64)
    for first, second in ((4, 7), (7, 4)):
        targets = match_anchors(boxes, segments, torch.tensor([[first, second]]))
        assert targets.labels[0, 0] == first + 1 and targets.labels[0, 1] == 0


def test_localisation_is_the_sum_of_two_means_twice_the_first_loss():
    raw, instances, uniform = batch(1)
    official = package_loss(raw, instances, uniform, loss="official_detached")
    first = package_loss(raw, instances, uniform, loss="book_v1")
    assert abs(float(official[2]) - 2 * float(first[2])) <= 1e-12


def test_records_made_before_configs_named_their_loss_read_as_the_first_loss():
    """Nothing is relabelled: a config recorded without a loss was trained with ``book_v1`` and reads so, in run
    files, grids and tables alike; a new config names its loss."""
    from sac_minimal.lab.config import TrainConfig, profile
    from sac_minimal.lab.runs import load_runs
    from sac_minimal.lab.tables import read_grid
    from sac_minimal.lab.records import RESULTS_DIR, check_table

    assert profile("quick").loss == "official" and TrainConfig.from_dict(profile("quick").to_dict()).loss == "official"
    old = {key: value for key, value in profile("quick").to_dict().items() if key != "loss"}
    assert TrainConfig.from_dict(old).loss == "book_v1"
    record = RESULTS_DIR / "acceptance_v4_quick"
    if not record.is_dir():
        pytest.skip("results/acceptance_v4_quick is not recorded")
    assert "loss" not in read_grid(record)["base"]
    assert {run.config.loss for run in load_runs(record)} == {"book_v1"}
    check_table(record)  # its table still matches its run files, read as trained
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig.from_dict({**old, "loss": "halved"})
