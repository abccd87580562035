"""sac_minimal: a runnable explanation of Structured Attention Composition (SAC, Yang et al., IEEE TIP 2022).

The paper's code is this package's top level; the experiment machinery is the ``lab`` subpackage, which imports
the core and is never imported by it (``tests/test_repository.py`` checks)::

    sac_minimal/              the paper
        ot                    transport solvers: log-domain Sinkhorn (Algorithm 1), exact and entropic 2 x T solvers
        sac                   the SAC plug-in: Theta projections, attention, structure matrix, OT loss, regularisers
        ssad                  the SSAD host detector
        anchors               default anchors, decoding, tIoU, matching
        detection             SSAD's loss and post-processing to video-level detections
        evaluation            ActivityNet-style AP and mAP at tIoU thresholds
        initialisation        the official code's weight initialisation
        files                 writing files atomically (no truncated checkpoint, record or dataset)
        data/                 THUMOS14's formats, windows, the synthetic surrogate (v3, v4), probes, checks
    sac_minimal/lab/          the experiments: configs, training, grids, records, statistics, benchmarks, the CLI

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
