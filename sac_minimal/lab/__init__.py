"""The lab: everything that runs, records and reports the book's experiments, built on the paper's code in the
core package (:mod:`sac_minimal`), which never imports it.

Modules (one concept each), in the order of their imports: each imports only modules listed above it.
    config        training configurations and the quick / full profiles.
    hypotheses    development and confirmatory worlds, hypotheses, verdicts, the testbed's acceptance test.
    significance  t-tests, intervals, Holm's adjustment, Spearman's rho, shares of a control's gain.
    provenance    code, machine and dataset fingerprints of a result.
    diagnostics   what a trained attention follows, against the surrogate's known reliabilities.
    group         several seeds of one model trained at once.
    plots         figures drawn by more than one chapter.
    book          the chapters' measured run time and HTML tables.
    variants      every named row of the book's tables, and every experiment with its hypotheses.
    runs          one run on disk: what it produced, its file's name, read back checked.
    tables        a grid's table: tests across worlds, Holm's adjustment, verdicts, table.json.
    acceptance    the acceptance guard: attention models train only on an accepted regime.
    train         one training run: fit, checkpoint, resume, evaluate (and the controls' truth-gated windows).
    ablations     Table VIII's parameter and FLOP counts.
    bench         benchmarks (``python -m sac_minimal bench ...``).
    experiments   grids of variants x worlds x h x seeds, recorded run by run, sharded.
    records       recorded results re-verified by re-running part of them, in any numeric environment.
    gpu_session   the prepared full-profile session for a lent GPU.
    cli           the command line (``python -m sac_minimal``).
"""
