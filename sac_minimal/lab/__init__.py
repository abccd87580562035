"""The lab: everything that runs, records and reports the book's experiments, built on the paper's code in the
core package (:mod:`sac_minimal`), which never imports it.

Modules (one concept each):
    config        training configurations and the quick / full profiles.
    train         one training run: fit, checkpoint, resume, evaluate (and the controls' truth-gated windows).
    group         several seeds of one model trained at once.
    variants      every named row of the book's tables, and every experiment with its hypotheses.
    hypotheses    development and confirmatory worlds, hypotheses, verdicts, the testbed's acceptance test.
    significance  t-tests, intervals, Holm's adjustment, Spearman's rho, shares of a control's gain.
    experiments   grids of variants x worlds x h x seeds, tests across worlds, recorded results, sharding.
    provenance    code, machine and dataset fingerprints of a result.
    records       recorded results re-verified by re-running part of them, in any numeric environment.
    diagnostics   what a trained attention follows, against the surrogate's known reliabilities.
    ablations     Table VIII's parameter and FLOP counts.
    bench         benchmarks (``python -m sac_minimal bench ...``).
    gpu_session   the prepared full-profile session for a lent GPU.
    plots         figures drawn by more than one chapter.
    book          the chapters' measured run time and HTML tables.
    cli           the command line (``python -m sac_minimal``).
"""
