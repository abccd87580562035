"""sac_minimal: a runnable explanation of Structured Attention Composition (SAC, Yang et al., IEEE TIP 2022).

Modules (one concept each; arrows point down only):
    ot          transport solvers: log-domain Sinkhorn (Algorithm 1), exact and entropic 2 x T solvers.
    sac         the SAC plug-in: Theta projections, attention, structure matrix, OT loss and regularisers.
    data        THUMOS14 formats, windows and the synthetic surrogate (a subpackage).
    ssad        the SSAD host detector.
    anchors     default anchors, decoding, tIoU, matching.
    detection   SSAD's loss and post-processing to video-level detections.
    evaluation  ActivityNet-style AP and mAP at tIoU thresholds.
    initialisation  the official code's weight initialisation.
    config      training configurations and the quick / full profiles.
    hypotheses  development and confirmatory worlds, the book's hypotheses and how a claim is judged.
    variants    every named row of the book's tables, and every experiment with its hypotheses.
    files       writing files atomically (no truncated checkpoint or record).
    provenance  code, machine and dataset fingerprints of a result.
    group       several seeds of one model trained at once.
    train       one training run: fit, checkpoint, resume, evaluate.
    diagnostics what a trained attention follows, against the surrogate's known reliabilities.
    significance  t-tests, intervals, Holm's adjustment, Spearman's rho.
    experiments grids of variants x worlds x h x seeds, tests across worlds, recorded results, sharding.
    records     recorded results re-verified by re-running part of them.
    gpu_session the prepared full-profile session for a lent GPU.
    plots       figures drawn by more than one chapter.
    book        the chapters' measured run time and HTML tables.
    bench       benchmarks run from the command line (``python -m sac_minimal bench ot``).

Importing the package needs only torch, numpy, scipy and matplotlib; POT is used by tests, notebooks and the
benchmark's reference columns only, pandas by the book's tables.
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
