"""Many runs: experiment grids (variants x worlds x h x seeds), recorded run by run, sharded.

An experiment (:mod:`sac_minimal.lab.variants`) is a list of variants, the (baseline, candidate) pairs it tests, the
hypotheses it declares (:mod:`sac_minimal.lab.hypotheses`) and its design: the surrogate worlds, the heterogeneity
values h and the seeds. Every variant is trained on every (world, h, seed) cell; at the same seed two variants share
their data order, random negatives and the starting weights of every layer they share, so differences are paired.

Files (``results/<name>/``, small and committed): ``grid.json`` (the experiment: variants, comparisons, hypotheses,
primary comparisons, worlds, h values, seeds, base config; written before the first run, and a grid of another design
refuses to write into the same folder), ``runs/<variant>_w<world>_h<h>_s<seed>.json`` (one
:class:`~sac_minimal.lab.runs.RunResult` each, with provenance), ``table.json`` and ``table.csv`` (written by
:func:`~sac_minimal.lab.tables.merge_grid`). A run file is keyed by its full config and its dataset's fingerprint:
running a grid again skips the runs recorded with the same config and data, and stops with the differing fields named
if a recorded run has another config or dataset (a record is never silently reused for another experiment nor
overwritten). Checkpoints go to ``data/cache/runs/`` (not committed), one folder per config and dataset, so a run
shared by several experiments (SSAD, SAC) is trained once. ``--shard i/n`` runs every n-th cell of the grid, so that
several processes or machines can share it; ``merge`` joins what they wrote.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sac_minimal.files import read_json, remove_stale_temporaries, write_json_atomic
from sac_minimal.lab.acceptance import check_accepted, check_accepted_config
from sac_minimal.lab.config import TrainConfig, resolve_data_root
from sac_minimal.lab.hypotheses import METRIC
from sac_minimal.lab.provenance import dataset_fingerprint
from sac_minimal.lab.runs import RunResult, finished_runs, recorded_run, run_file, run_key
from sac_minimal.lab.tables import grid_definition
from sac_minimal.lab.train import fit_runs
from sac_minimal.lab.variants import VARIANTS, Experiment, Variant


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; ``None`` -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError as error:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from error
    if not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return index, count


def check_design(worlds: Sequence[int], heterogeneities: Sequence[float], seeds: Sequence[int],
                 datasets: dict) -> None:
    """A grid's design must replicate over independent data. ``datasets`` maps each (world, h) to its
    ``(root, kind)``. Refused: a world, h or seed listed twice; more than one world, or more than one h, on a
    dataset that is not a surrogate (a world is an independently generated surrogate; real THUMOS14 or any other
    fixed folder is one dataset, whose replication unit is the seed); and two worlds whose data is the same file for
    file (the same dataset fingerprint)."""
    for label, values in (("world", worlds), ("h", heterogeneities), ("seed", seeds)):
        repeated = sorted({value for value in values if list(values).count(value) > 1})
        if repeated:
            raise ValueError(f"{label} {', '.join(f'{value:g}' for value in repeated)} is listed twice; each "
                             f"{label} is one independent unit, counting it twice would fake replication")
    fixed = sorted({str(root) for root, kind in datasets.values() if kind != "synthetic"})
    if fixed and (len(worlds) > 1 or len(heterogeneities) > 1):
        raise ValueError(f"{fixed[0]} is one fixed dataset, not a surrogate: a world is an independently generated "
                         "surrogate (a data seed), so worlds and h values cannot be replicated on it. Run one world "
                         "and one h (--worlds 0 --heterogeneity 1) with several --seeds: the seeds are then the "
                         "paired units of the tests")
    by_fingerprint: dict = {}
    for (world, h), (root, _) in datasets.items():
        fingerprint = dataset_fingerprint(root)
        other = by_fingerprint.setdefault((fingerprint, h), world)
        if other != world:
            raise ValueError(f"worlds {other} and {world} (h = {h:g}) have identical data ({root}); a world must be "
                             "an independent dataset, so the grid refuses to count one dataset twice")


def claim_grid(results_dir: Path, definition: dict) -> None:
    """Write ``grid.json``, or check that the one there is this grid: two grids of different designs (or configs)
    never write into the same record. The first writer creates the file exclusively, so two processes started at
    once cannot both claim it; processes running shards of the same grid agree and share it."""
    path = results_dir / "grid.json"
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(definition, indent=1)
    # Written whole to a temporary file, then linked into place: the link fails if the file exists, and a process
    # that finds it never reads a half-written one.
    handle, temporary = tempfile.mkstemp(prefix=".grid.json.", suffix=".tmp", dir=results_dir)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.link(temporary, path)
        return
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
    existing, definition = read_json(path, "grid file"), json.loads(text)
    if existing != definition:
        changed = sorted(key for key in set(existing) | set(definition) if existing.get(key) != definition.get(key))
        raise ValueError(f"{results_dir} already records another grid (differs in: {', '.join(changed)}); use "
                         "another --name, or delete that folder to replace the record")


def _cells(experiment: Experiment, worlds, heterogeneities, seeds) -> list[tuple[str, int, float, int]]:
    """Every (variant, world, h, seed) of the grid, in an order that interleaves the variants (so that shards get
    similar work)."""
    return [(variant, world, float(h), seed) for h in heterogeneities for world in worlds for seed in seeds
            for variant in experiment.variants]


def check_tests_can_be_made(experiment: Experiment, worlds: Sequence[int], heterogeneities: Sequence[float],
                            seeds: Sequence[int], fixed: bool = False) -> None:
    """Before anything trains: an acceptance test reads its control at every h of
    :data:`~sac_minimal.lab.hypotheses.ACCEPTANCE_HETEROGENEITIES`, so its grid must run them all; refused with what
    to change, instead of training every run and failing at the merge. (Other grids may run fewer h, e.g. on a GPU;
    the hypotheses at the h they leave out are then not tested. The command line also refuses a grid with a single
    unit, :func:`check_units`.)"""
    from sac_minimal.lab.hypotheses import ACCEPTANCE_HETEROGENEITIES

    if experiment.title.startswith("Acceptance") and fixed:
        raise ValueError(f"{experiment.title} compares SSAD with controls that read a surrogate's truth on its "
                         "development worlds; a dataset that is not a surrogate has no truth to read: leave --data "
                         "out to run it on the surrogate")
    missing = sorted(set(ACCEPTANCE_HETEROGENEITIES) - {float(h) for h in heterogeneities})
    if experiment.title.startswith("Acceptance") and not fixed and missing:
        raise ValueError(f"{experiment.title} tests at h = {', '.join(f'{h:g}' for h in missing)}, which this grid "
                         "does not run; leave --heterogeneity out to run the acceptance test's design")


def check_units(worlds: Sequence[int], seeds: Sequence[int]) -> None:
    """A table's tests pair units across models: at least two worlds, or two seeds on one world (on fixed data)."""
    if len(worlds) < 2 and len(seeds) < 2:
        raise ValueError(f"a test across units needs at least two of them; this grid has {len(worlds)} world and "
                         f"{len(seeds)} seed: run two or more worlds, or two or more --seeds on one world")


def check_confirmatory_worlds(experiment: Experiment, worlds: Sequence[int]) -> None:
    """A table tested on confirmatory worlds never runs on the worlds its generator was designed on: a world of
    ``experiment.development_worlds`` that the experiment does not itself declare (an acceptance test declares its
    development worlds) is refused."""
    borrowed = sorted(set(worlds) & set(experiment.development_worlds) - set(experiment.worlds))
    if borrowed:
        raise ValueError(f"worlds {', '.join(map(str, borrowed))} are development worlds of this regime (looked at "
                         f"while its generator was designed, never evidence); {experiment.title} is tested on its "
                         f"confirmatory worlds {', '.join(map(str, experiment.worlds))}: choose among those")


def _given_surrogate(base: TrainConfig) -> dict | None:
    """The metadata of a surrogate folder given as ``data_root`` (its world is ``seed``), or None."""
    from sac_minimal.data.synthetic import METADATA_FILE, read_synthetic_metadata

    if base.data_root is None or not (Path(base.data_root) / METADATA_FILE).exists():
        return None
    return read_synthetic_metadata(Path(base.data_root))


def run_experiment(experiment: Experiment, base: TrainConfig, results_dir: str | Path, *,
                   checkpoints_dir: str | Path, worlds: Sequence[int] | None = None,
                   heterogeneities: Sequence[float] | None = None, seeds: Sequence[int] | None = None,
                   shard: str | None = None, verbose: bool = False, seeds_together: bool = False,
                   time_budget_s: float | None = None, compiled: bool = False,
                   finish_within_budget: bool = False) -> list[Path]:
    """Train this shard's cells of an experiment's grid; each finished cell writes its run file.

    ``worlds``, ``heterogeneities`` and ``seeds`` default to the experiment's design (on a dataset that is not a
    surrogate: one world, one h; :func:`check_design` refuses more, and the rows that need the surrogate's truth
    are left out). ``grid.json`` is claimed first (:func:`claim_grid`). Cells recorded with the same config and dataset are skipped, so an interrupted experiment is
    resumed by running the same command again; a cell finished in ``checkpoints_dir`` for another experiment is
    copied, not retrained. With ``seeds_together`` the unfinished seeds of a (variant, world, h) train in one loop
    (:func:`~sac_minimal.lab.train.fit_runs`), which is how a GPU is kept busy at the official batch of 4. With
    ``time_budget_s`` the grid stops at an epoch boundary when the budget would be exceeded (checkpoints kept; the
    same call later resumes); with ``finish_within_budget`` too, a training loop projected after its first epoch
    to outlast the budget left raises :class:`~sac_minimal.lab.train.WouldNotFinish`. ``compiled`` compiles each
    training step. Returns this shard's run files; those not
    yet written are unfinished cells."""
    index, count = parse_shard(shard)
    results_dir, checkpoints_dir = Path(results_dir), Path(checkpoints_dir)
    if results_dir.is_symlink():
        raise ValueError(f"{results_dir} is a symbolic link (to {results_dir.resolve()}); a record is written into "
                         "its own folder, never through a link into another: remove the link or choose another --name")
    check_accepted(experiment, base)
    base = experiment.base_config(base)
    worlds, heterogeneities, seeds, left_out = _design(experiment, base, worlds, heterogeneities, seeds)
    configs = (VARIANTS[name].config(base, seed, world, h)
               for name, world, h, seed in _cells(experiment.without(left_out), worlds, heterogeneities, seeds))
    for config in {(config.model, config.data_version, config.data_size): config for config in configs}.values():
        check_accepted_config(config)  # every row at this size, before anything is claimed or trained
    claim_grid(results_dir, grid_definition(experiment, base, worlds, heterogeneities, seeds, left_out))
    experiment = experiment.without(left_out)
    remove_stale_temporaries(results_dir / "runs")
    cells = _cells(experiment, worlds, heterogeneities, seeds)[index::count]
    to_train = _cells_to_train(base, cells, results_dir, checkpoints_dir, verbose)
    if seeds_together:
        groups: dict = {}
        for cell in to_train:
            groups.setdefault(cell[2].replace(seed=0).to_json(), []).append(cell)
        batches = list(groups.values())
    else:
        batches = [[cell] for cell in to_train]
    started = time.perf_counter()
    for batch in batches:
        remaining = None if time_budget_s is None else time_budget_s - (time.perf_counter() - started)
        if remaining is not None and remaining <= 0:
            break
        results = fit_runs([cell[2] for cell in batch], [cell[3] for cell in batch], verbose=verbose,
                           time_budget_s=remaining, compiled=compiled,
                           finish_within_budget=finish_within_budget)
        if results is None:
            break
        for (variant, path, _, _, fingerprint), result in zip(batch, results):
            _record(path, variant, result, fingerprint, verbose)
    return [run_file(results_dir, *cell) for cell in cells]


def _design(experiment: Experiment, base: TrainConfig, worlds, heterogeneities, seeds) -> tuple:
    """``(worlds, heterogeneities, seeds, left_out)`` of a grid: the experiment's design where none is given (on a
    dataset that is not a surrogate: one world, one h), checked (:func:`check_confirmatory_worlds`,
    :func:`check_tests_can_be_made`, :func:`check_design`), and the rows left out on data without a surrogate's
    truth, each with its reason (printed)."""
    given = _given_surrogate(base)
    if given is not None:  # one surrogate folder given with --data is one (world, h): its own, unless asked
        worlds = worlds or (given["seed"],)
        heterogeneities = heterogeneities or (float(given["heterogeneity"]),)
    asked = {"world": worlds[0] if worlds else None,
             "heterogeneity": float(heterogeneities[0]) if heterogeneities else None}
    probe = base.replace(**{key: value for key, value in asked.items() if value is not None})
    fixed = resolve_data_root(probe, create=False)[1] != "synthetic"  # real THUMOS14 or a given folder: one dataset
    worlds = tuple(((0,) if fixed else experiment.worlds) if worlds is None else worlds)
    if not fixed:
        check_confirmatory_worlds(experiment, worlds)
    heterogeneities = tuple(((1.0,) if fixed else experiment.heterogeneities) if heterogeneities is None
                            else heterogeneities)
    seeds = tuple(range(experiment.seeds) if seeds is None else seeds)
    check_tests_can_be_made(experiment, worlds, heterogeneities, seeds, fixed)
    roots = {(world, float(h)): resolve_data_root(base.replace(world=world, heterogeneity=float(h)))
             for world in worlds for h in heterogeneities}
    check_design(worlds, heterogeneities, seeds, roots)
    left_out = {}
    if any(kind != "synthetic" for _, kind in roots.values()):
        left_out = experiment.left_out_on_fixed_data()
    elif base.data_root is not None and "headroom" in experiment.variants:  # one surrogate folder: one (world, h)
        left_out = {"headroom": "it is SSAD on the same world at h = 0, which one --data folder does not hold; leave "
                                "--data out to run it"}
    for name, reason in left_out.items():
        print(f"left out on {next(iter(roots.values()))[0]}: {VARIANTS[name].title} ({reason})")
    return worlds, heterogeneities, seeds, left_out


def _cells_to_train(base: TrainConfig, cells, results_dir: Path, checkpoints_dir: Path, verbose: bool) -> list:
    """The cells of this shard still to train, as ``(variant, run file, config, checkpoint folder, fingerprint)``:
    a cell recorded with the same config and dataset is skipped, one finished in ``checkpoints_dir`` for another
    experiment is recorded from there, not retrained."""
    finished = finished_runs(checkpoints_dir)
    to_train = []
    for name, world, heterogeneity, seed in cells:
        config = VARIANTS[name].config(base, seed, world, heterogeneity)
        fingerprint = dataset_fingerprint(resolve_data_root(config)[0])
        path = run_file(results_dir, name, world, heterogeneity, seed)
        if recorded_run(path, config, fingerprint) is not None:
            continue
        if (config.to_json(), fingerprint) in finished:
            _record(path, VARIANTS[name], finished[config.to_json(), fingerprint], fingerprint, verbose)
        else:
            run_dir = checkpoints_dir / f"{path.stem}_{run_key(config, fingerprint)}"
            to_train.append((VARIANTS[name], path, config, run_dir, fingerprint))
    return to_train


def _record(path: Path, variant: Variant, result: RunResult, fingerprint: str, verbose: bool) -> None:
    """Write a run file, checking again just before that no other process recorded another run there."""
    recorded_run(path, result.config, fingerprint)
    result.extra["variant"] = variant.name
    write_json_atomic(path, result.to_dict())
    if verbose:
        print(f"{path.stem}: Avg 0.1:0.7 = {result.evaluation['Avg 0.1:0.7']:.4f} ({result.seconds:.0f} s)",
              flush=True)


PLATEAU_HORIZON, PLATEAU_TOLERANCE = 12, 0.10


def plateau_epoch(losses: Sequence[float], horizon: int = PLATEAU_HORIZON,
                  tolerance: float = PLATEAU_TOLERANCE) -> int | None:
    """The first epoch e (1-based) from which the training loss falls by less than ``tolerance`` (relative) over
    the next ``horizon`` epochs: the mean of epochs e-3..e against the mean of epochs e+horizon-3..e+horizon.
    ``None`` when no epoch of ``losses`` qualifies (train longer).

    >>> plateau_epoch([4.0, 3.0, 2.0, 1.5] + [1.0] * 20, horizon=4)
    8
    """
    losses = np.asarray(losses, dtype=np.float64)
    for epoch in range(4, len(losses) - horizon + 1):
        before, after = losses[epoch - 4:epoch].mean(), losses[epoch + horizon - 4:epoch + horizon].mean()
        if 1 - after / before < tolerance:
            return epoch
    return None


def measure_plateau(base: TrainConfig, models: Sequence[str], checkpoints_dir: str | Path) -> dict:
    """Train each model (seed 0, ``base``'s world, learning rate and epochs, no decay) and find where its training
    loss reaches a plateau (:func:`plateau_epoch`): how many epochs a learning rate needs. Returns ``{"config",
    "models": {model: {"losses", "plateau_epoch", "Avg 0.1:0.7"}}, "provenance"}``."""
    from sac_minimal.lab.provenance import provenance

    base = base.replace(lr_decay_epochs=())
    result = {"config": base.to_dict(), "horizon": PLATEAU_HORIZON, "tolerance": PLATEAU_TOLERANCE, "models": {},
              "provenance": provenance()}
    for model in models:
        config = base.replace(model=model)
        fingerprint = dataset_fingerprint(resolve_data_root(config)[0])
        run = fit_runs([config], [Path(checkpoints_dir) / f"plateau_{model}_{run_key(config, fingerprint)}"])[0]
        losses = [row["total"] for row in run.metrics]
        result["models"][model] = {"losses": losses, "plateau_epoch": plateau_epoch(losses),
                                   METRIC: run.evaluation[METRIC]}
    return result
