"""One prepared full-profile session on a lent GPU: ``python -m sac_minimal gpu-run --out DIR``.

A GPU may be lent for a few minutes with nothing downloadable on it, so everything the full profile needs is made
on the device from the package itself, in this order, inside one time budget:

1. write the full-size surrogate (generator v3, 200 + 210 videos, 2 x 1024 channels, h = 1) of the first two
   confirmatory worlds under ``DIR/data``;
2. ``bench train --runs R`` (R seeds at once) and ``bench train --phases``: what a step costs on this device and
   where it goes (a minute);
3. Table I (every row of ``EXPERIMENTS["table1"]``: SSAD, SSAD+Θ, the truth-using controls, composed without OT,
   SAC official, with the light Θ and stabilised) at the official recipe and h = 1 in those two worlds, R seeds
   trained together with bf16 autocast for SSAD, into ``DIR/results/table1_full_v3``;
4. Table VI (SAC's components) the same way, into ``DIR/results/ablation_components_full_v3``, with what is left.

Every training step stops cleanly at an epoch boundary before the budget ends; what finished is recorded (each
record with its provenance: device, torch and CUDA versions, commit, dataset version and fingerprint, wall time),
checkpoints stay under ``DIR/runs``, and ``DIR/session.json`` says where the time went and which command finishes
the rest. ``torch.compile`` is not used: it has not been shown to help on a GPU yet, and its compile time would eat
a short budget. ``--dry-run`` runs the same steps at a tiny size on the CPU (the tests do), so the session's code,
flags and recording path are exercised without a GPU.
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


def _session(out: Path, max_minutes: float, seeds: int, dry_run: bool) -> dict:
    from sac_minimal.lab.bench import bench_step_phases, bench_train
    from sac_minimal.lab.config import profile
    from sac_minimal.data.locate import synthetic_root
    from sac_minimal.data.synthetic import GENERATOR_VERSION
    from sac_minimal.lab.experiments import merge_grid, run_experiment
    from sac_minimal.lab.hypotheses import CONFIRMATORY_WORLDS
    from sac_minimal.lab.provenance import provenance
    from sac_minimal.lab.variants import EXPERIMENTS

    started = time.perf_counter()
    budget = 60 * max_minutes
    size = "tiny" if dry_run else "full"
    summary = {"dry_run": dry_run, "budget_s": budget, "seeds": seeds, "provenance": provenance(), "phases": {}}
    worlds = CONFIRMATORY_WORLDS[:2]
    for world in worlds:
        synthetic_root(size, world, GENERATOR_VERSION, 1.0)
    summary["phases"]["write the surrogate"] = _elapsed(started)

    channels = 16 if dry_run else 1024
    repeats = 2 if dry_run else 10
    summary["bench_train"] = bench_train(channels=channels, repeats=repeats, runs=seeds)
    summary["bench_phases"] = bench_step_phases(channels=channels, repeats=repeats, windows=64 if dry_run else 1024)
    summary["phases"]["benchmarks"] = _elapsed(started) - summary["phases"]["write the surrogate"]

    if dry_run:
        base = profile("quick", data_size="tiny", epochs=1, base_channels=16, main_channels=32, device="cpu")
    else:
        base = profile("full", data_size="full", amp=True)
    summary["records"] = {}
    for experiment, name in (("table1", "table1"), ("components", "ablation_components")):
        record = out / "results" / f"{name}_{base.profile}_v{GENERATOR_VERSION}"
        phase_started = time.perf_counter()
        remaining = budget - (time.perf_counter() - started)
        paths = run_experiment(EXPERIMENTS[experiment], base, record, worlds=worlds, heterogeneities=(1.0,),
                               seeds=range(seeds), checkpoints_dir=out / "runs", seeds_together=True,
                               time_budget_s=remaining, verbose=True) if remaining > 0 else []
        finished = [path.stem for path in paths if path.exists()]
        complete = bool(paths) and len(finished) == len(paths)
        if complete:
            merge_grid(record)
        summary["records"][name] = {"finished_runs": finished, "complete": complete,
                                    "seconds": _elapsed(phase_started)}
        summary["phases"][experiment] = _elapsed(phase_started)
        if not complete:
            summary["records"][name]["to_finish"] = (
                f"python -m sac_minimal {'table1' if experiment == 'table1' else 'ablate ' + experiment} "
                f"--profile {base.profile} --worlds {' '.join(map(str, worlds))} --heterogeneity 1 --seeds {seeds} "
                "--seeds-together --amp")
    summary["wall_seconds"] = _elapsed(started)
    write_json_atomic(out / SESSION_FILE, summary)
    return summary


def format_session(summary: dict) -> str:
    """The session's summary in a few lines: where the time went, what was recorded, what is left."""
    kind = "dry run" if summary["dry_run"] else "full profile"
    header = (f"{kind} on {summary['provenance']['device']}, {summary['wall_seconds']:.0f} s of a "
              f"{summary['budget_s']:.0f} s budget")
    lines = [header]
    lines += [f"  {phase}: {seconds:.0f} s" for phase, seconds in summary["phases"].items()]
    for name, record in summary["records"].items():
        state = "complete" if record["complete"] else f"{len(record['finished_runs'])} runs finished"
        lines.append(f"  {name}: {state}" + (f"; finish with: {record['to_finish']}" if "to_finish" in record else ""))
    return "\n".join(lines)


def read_session(out: str | Path) -> dict:
    return json.loads((Path(out) / SESSION_FILE).read_text())
