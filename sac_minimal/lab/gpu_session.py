"""One prepared full-profile session on a lent GPU: ``python -m sac_minimal gpu-run --out DIR``.

A GPU may be lent for a few minutes with nothing downloadable on it, so everything the full profile needs is made
on the device from the package itself, in this order, inside one time budget. It runs generator v4, the regime where
an unreliable modality misleads and where a control that uses the truth wins at the quick size (generator v3 is the
regime where no control is shown to win, so its full-size Table I could not tell an attention that does not help
from a testbed that rewards nothing):

1. write the full-size surrogate (generator v4, 200 + 210 videos, 2 x 1024 channels, h = 1; h = 0 for the headroom
   row when it trains) of the first two confirmatory worlds of v4 under ``DIR/data``;
2. ``bench train --runs R`` (R seeds at once) and ``bench train --phases``: what a step costs on this device and
   where it goes (a minute);
3. the privileged control at three granularities (``EXPERIMENTS["controls_v4"]``: SSAD, and SSAD given the true
   clean share per step, per window and per video) at the official recipe and h = 1 in those two worlds, R seeds
   trained together with bf16 autocast for SSAD, into ``DIR/results/controls_v4_full_official_loss``: whether the truth still pays
   at full size, and at which granularity (per window is what SAC's modality attention can express). No attention
   model trains here, so this needs no acceptance record;
4. v4's acceptance test at full size (``EXPERIMENTS["acceptance_v4"]``: SSAD, headroom and the privileged control on
   its development worlds at every h of the test), into ``DIR/results/acceptance_v4_full_official_loss`` with its
   ``acceptance.json`` once complete (what does not fit resumes with the command in ``session.json``). Attention
   models train on a regime only once its acceptance record *for that size* has passed
   (:func:`~sac_minimal.lab.acceptance.check_accepted_config`), so this is what a later session needs;
5. Table I on v4 (``EXPERIMENTS["table1_v4"]``) the same way as step 3, into ``DIR/results/table1_v4_full_official_loss``, with
   what is left, only when ``results/acceptance_v4_full_official_loss`` in the repository has passed; otherwise the session
   records why it was refused and how to go on (copy step 4's record into ``results/`` and run again).

Every training loop (the seeds of one row, world and h, trained together) is measured for one epoch and stopped
there when the whole loop is projected to outlast the budget left (:class:`~sac_minimal.lab.train.WouldNotFinish`):
a lent machine is wiped when it goes back, so a loop that cannot finish is lost work. The session then records the
projection (``projected_group_minutes``), starts nothing larger, and says which command finishes the work on a
machine that can be held long enough. On one H200 a loop of six SSAD seeds at the official recipe takes about as
long as a lease of a quarter of an hour, before the machine's start and the surrogate's writing, and a loop of
SSAD+SAC about three times that (``results/device_h200``): at the official batch of 4 the step is bound by kernel
launches, not by arithmetic. What finished is recorded (each record with its provenance: device, torch and CUDA
versions, commit, dataset version and fingerprint, wall time), checkpoints stay under ``DIR/runs``, and
``DIR/session.json``, written again after every phase (so a session stopped from outside still says what it
measured), says where the time went and which command finishes the rest. ``torch.compile`` is not used: it has not
been shown to help on a GPU yet, and its compile time would eat a short budget. ``--dry-run`` runs the same steps at
a tiny size on the CPU (the tests do), so the session's code, flags and recording path are exercised without a GPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sac_minimal.files import write_json_atomic

FULL_SEEDS = 6
SESSION_FILE = "session.json"


def _elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 1)


def gpu_full_profile(out: str | Path, *, max_minutes: float = 9.0, seeds: int = FULL_SEEDS,
                     dry_run: bool = False) -> dict:
    """Run the session of the module docstring into ``out`` and return (and write) its summary. The surrogates go
    to ``out/data`` (``SAC_MINIMAL_DATA`` is set for the session and restored afterwards)."""
    previous = os.environ.get("SAC_MINIMAL_DATA")
    os.environ["SAC_MINIMAL_DATA"] = str(Path(out) / "data")
    try:
        return _session(Path(out), max_minutes, seeds, dry_run)
    finally:
        if previous is None:
            os.environ.pop("SAC_MINIMAL_DATA", None)
        else:
            os.environ["SAC_MINIMAL_DATA"] = previous


BENCHMARK_SECONDS = 60
"""The benchmarks run only when this much of the budget is left (they took about a minute on an H200)."""
SESSION_VERSION = 4
"""The generator the session trains on (see the module docstring)."""
SESSION_EXPERIMENTS = ("controls_v4", "acceptance_v4", "table1_v4")
"""What the session records, in this order, each into ``DIR/results/<experiment>_<profile>_<loss>_loss`` (the
names :func:`~sac_minimal.lab.acceptance.acceptance_name` gives the acceptance record)."""


def _session(out: Path, max_minutes: float, seeds: int, dry_run: bool) -> dict:
    from sac_minimal.lab.config import profile
    from sac_minimal.lab.hypotheses import CONFIRMATORY_WORLDS_V4
    from sac_minimal.lab.provenance import provenance

    started = time.perf_counter()
    budget = 60 * max_minutes
    summary = {"dry_run": dry_run, "budget_s": budget, "seeds": seeds, "generator_version": SESSION_VERSION,
               "provenance": provenance(), "phases": {}}
    worlds = CONFIRMATORY_WORLDS_V4[:2]
    _data_and_benchmarks(out, summary, worlds, dry_run, started)
    if dry_run:
        base = profile("quick", data_size="tiny", epochs=1, base_channels=16, main_channels=32, device="cpu")
    else:
        base = profile("full", data_size="full", amp=True)
    summary["records"] = {}
    too_long = None  # the first training loop projected to outlast the budget: nothing after it starts
    for experiment in SESSION_EXPERIMENTS:
        too_long = _session_record(out, summary, experiment, base, worlds, dry_run, started, too_long)
        write_json_atomic(out / SESSION_FILE, summary)
    summary["wall_seconds"] = _elapsed(started)
    write_json_atomic(out / SESSION_FILE, summary)
    return summary


def _data_and_benchmarks(out: Path, summary: dict, worlds, dry_run: bool, started: float) -> None:
    """The session's first two phases: write the surrogate of ``worlds``, then benchmark (when the budget leaves
    :data:`BENCHMARK_SECONDS`), each recorded in ``summary`` as it ends."""
    from sac_minimal.data.locate import synthetic_root
    from sac_minimal.lab.bench import bench_step_phases, bench_train

    size = "tiny" if dry_run else "full"
    write_json_atomic(out / SESSION_FILE, summary)
    for world in worlds:
        synthetic_root(size, world, SESSION_VERSION, 1.0)
    summary["phases"]["write the surrogate"] = _elapsed(started)
    write_json_atomic(out / SESSION_FILE, summary)
    channels = 16 if dry_run else 1024
    repeats = 2 if dry_run else 10
    if summary["budget_s"] - _elapsed(started) >= BENCHMARK_SECONDS:
        summary["bench_train"] = bench_train(channels=channels, repeats=repeats, runs=summary["seeds"])
        summary["bench_phases"] = bench_step_phases(channels=channels, repeats=repeats,
                                                    windows=64 if dry_run else 1024)
    else:
        summary["bench_skipped"] = f"not started: less than {BENCHMARK_SECONDS} s of the budget was left"
    summary["phases"]["benchmarks"] = _elapsed(started) - summary["phases"]["write the surrogate"]
    write_json_atomic(out / SESSION_FILE, summary)


def _session_record(out: Path, summary: dict, experiment: str, base, worlds, dry_run: bool, started: float,
                    too_long: str | None) -> str | None:
    """Train one of :data:`SESSION_EXPERIMENTS` into ``out/results`` with what is left of the budget, and record in
    ``summary`` what finished, what was refused or skipped and the command that finishes it; returns the first
    record whose training loop was projected to outlast the budget (nothing after it starts)."""
    from sac_minimal.lab.acceptance import NotAccepted, acceptance_name, record_acceptance
    from sac_minimal.lab.experiments import run_experiment
    from sac_minimal.lab.hypotheses import ACCEPTANCE_HETEROGENEITIES, DEVELOPMENT_WORLDS_V4
    from sac_minimal.lab.tables import merge_grid
    from sac_minimal.lab.train import WouldNotFinish
    from sac_minimal.lab.variants import EXPERIMENTS

    seeds = summary["seeds"]
    name = acceptance_name(SESSION_VERSION, base.profile, base.loss).replace("acceptance_v4", experiment)
    record = out / "results" / name
    acceptance = experiment.startswith("acceptance")
    # the acceptance test on its designed development worlds (two in a dry run, to keep it short)
    grid_worlds = (DEVELOPMENT_WORLDS_V4[:2] if dry_run else DEVELOPMENT_WORLDS_V4) if acceptance else worlds
    hs = ACCEPTANCE_HETEROGENEITIES if acceptance else (1.0,)
    phase_started = time.perf_counter()
    remaining = summary["budget_s"] - (time.perf_counter() - started)
    entry = summary["records"][name] = {"finished_runs": [], "complete": False}
    paths = []
    if too_long is not None:
        entry["skipped"] = (f"not started: one training loop of {too_long} was projected to take "
                            f"{summary['records'][too_long]['projected_group_minutes']:.1f} min, more than "
                            "the session had left")
    elif remaining <= 0:
        entry["skipped"] = "not started: the session's budget was spent"
    else:
        try:
            paths = run_experiment(EXPERIMENTS[experiment], base, record, worlds=grid_worlds,
                                   heterogeneities=hs, seeds=range(seeds), checkpoints_dir=out / "runs",
                                   seeds_together=True, time_budget_s=remaining, verbose=True,
                                   finish_within_budget=True)
        except NotAccepted as error:  # the acceptance guard: no passed record for this regime at this size
            entry["refused"] = str(error)
        except WouldNotFinish as stop:  # keep what finished before the loop that would not
            too_long = name
            entry["projected_group_minutes"] = round(stop.projected_s / 60, 1)
            entry["epoch_seconds"] = round(stop.epoch_s, 1)
            entry["finished_runs"] = sorted(path.stem for path in (record / "runs").glob("*.json"))
    if paths:
        entry["finished_runs"] = [path.stem for path in paths if path.exists()]
    entry["complete"] = bool(paths) and len(entry["finished_runs"]) == len(paths)
    if entry["complete"]:
        merge_grid(record)
        if acceptance:
            entry["passed"] = record_acceptance(record)["passed"]
    entry["seconds"] = summary["phases"][experiment] = _elapsed(phase_started)
    if not entry["complete"]:
        entry["to_finish"] = (
            (f"copy DIR/results/{acceptance_name(SESSION_VERSION, 'full', base.loss)} into results/ once it has "
             "passed, then " if "refused" in entry else "")
            + f"python -m sac_minimal ablate {experiment} --profile {base.profile} --name {name} --worlds "
            f"{' '.join(map(str, grid_worlds))} --heterogeneity {' '.join(f'{h:g}' for h in hs)} "
            f"--seeds {seeds} --seeds-together --amp")
    return too_long


def format_session(summary: dict) -> str:
    """The session's summary in a few lines: where the time went, what was recorded, what is left."""
    kind = "dry run" if summary["dry_run"] else "full profile"
    header = (f"{kind} on {summary['provenance']['device']}, {summary['wall_seconds']:.0f} s of a "
              f"{summary['budget_s']:.0f} s budget")
    lines = [header]
    lines += [f"  {phase}: {seconds:.0f} s" for phase, seconds in summary["phases"].items()]
    for name, record in summary["records"].items():
        state = ("refused: " + record["refused"] if "refused" in record else
                 record["skipped"] if "skipped" in record else
                 f"stopped after one epoch ({record['epoch_seconds']:.0f} s): one training loop would take "
                 f"{record['projected_group_minutes']:.1f} min" if "projected_group_minutes" in record else
                 "complete" + (f", acceptance {'passed' if record['passed'] else 'not passed'}" if "passed" in record
                               else "") if record["complete"] else f"{len(record['finished_runs'])} runs finished")
        lines.append(f"  {name}: {state}" + (f"; finish with: {record['to_finish']}" if "to_finish" in record else ""))
    return "\n".join(lines)


def read_session(out: str | Path) -> dict:
    return json.loads((Path(out) / SESSION_FILE).read_text())
