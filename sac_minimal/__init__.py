"""sac_minimal: a runnable explanation of Structured Attention Composition (SAC, Yang et al., IEEE TIP 2022).

Modules (one concept each; arrows point down only):
    ot          transport solvers: log-domain Sinkhorn (Algorithm 1), exact and entropic 2 x T solvers.
    sac         the SAC plug-in: Theta projections, attention, structure matrix, OT loss and regularisers.
    data        THUMOS14 formats, windows and the synthetic surrogate (a subpackage).
    ssad        the SSAD host detector.
    anchors     default anchors, decoding, tIoU, matching.
    detection   SSAD's loss and post-processing to video-level detections.
    evaluation  ActivityNet-style AP and mAP at tIoU thresholds.
    config      training configurations and the quick / full profiles.
    train       one training run: fit, checkpoint, resume, evaluate.
    experiments seeds x models grids, Student's t-test, results with provenance, sharding.
    plots       figures drawn by more than one chapter.
    bench       benchmarks run from the command line (``python -m sac_minimal bench ot``).

Importing the package needs only torch, numpy, scipy and matplotlib; POT is used by tests, notebooks and the
benchmark's reference columns only.
"""

from sac_minimal.ot import (
    TransportResult,
    entropic_ot_2xT,
    exact_ot_2xT,
    marginal_error,
    sinkhorn_log,
    transport_cost,
)

__version__ = "0.1.0"

__all__ = [
    "TransportResult",
    "entropic_ot_2xT",
    "exact_ot_2xT",
    "marginal_error",
    "sinkhorn_log",
    "transport_cost",
]
