"""Many runs: the Table I grid (models x seeds), Student's t-test, provenance, sharding and merging.

A Table I experiment trains SSAD, the capacity-matched SSAD+Θ, SSAD+SAC and SSAD+SAC with the light Θ for every seed,
then reports per-seed mAP, mean and standard deviation per model, and two-sample t-tests (SSAD vs SSAD+SAC, SSAD+Θ
vs SSAD+SAC, SSAD vs SSAD+SAC light) with the pooled-variance statistic of the paper (Eqs. 9-10):

    s_p^2 = ((n_1 - 1) s_1^2 + (n_2 - 1) s_2^2) / (n_1 + n_2 - 2),   t = (m_1 - m_2) / (s_p sqrt(1/n_1 + 1/n_2))

with n_1 + n_2 - 2 degrees of freedom (two-sided p-value).

The same machinery runs the ablations (:mod:`sac_minimal.ablations`): an experiment is a list of :class:`Variant`
rows, a list of seeds and the (baseline, candidate) pairs to test.

Files (``results/<name>/``, small and committed): ``grid.json`` (variants, seeds, comparisons),
``runs/<variant>_seed<k>.json`` (one :class:`RunResult` each, with provenance), ``table.json`` and ``table.csv``
(written by :func:`merge_grid`). Checkpoints go to
``data/cache/runs/<name>/`` (not committed). ``--shard i/n`` runs every n-th cell of the grid, so that several
machines can share it; ``merge`` joins what they wrote.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sac_minimal.config import TrainConfig
from sac_minimal.train import RunResult, fit_runs


@dataclass(frozen=True)
class Variant:
    """One row of an experiment table: a model, the SAC fields it changes from the base config, and optionally
    another SAC preset."""

    name: str
    model: str
    sac_changes: tuple = ()
    label: str = ""
    sac_preset: str | None = None

    def config(self, base: TrainConfig, seed: int) -> TrainConfig:
        return base.replace(model=self.model, seed=seed, sac_preset=self.sac_preset or base.sac_preset,
                            sac_changes=tuple(base.sac_changes) + tuple(self.sac_changes))


TABLE1 = (Variant("ssad", "ssad", label="SSAD"), Variant("ssad_theta", "ssad_theta", label="SSAD+Θ"),
          Variant("ssad_sac", "ssad_sac", label="SSAD+SAC"),
          Variant("ssad_sac_light", "ssad_sac", label="SSAD+SAC (light Θ)", sac_preset="light"))
"""Table I's rows: SSAD, the capacity-matched SSAD+Θ, SSAD+SAC (official preset), and SSAD+SAC with the light Θ whose
cost matches the paper's Table VIII (:meth:`sac_minimal.sac.SACConfig.light`)."""
TABLE1_COMPARISONS = (("ssad", "ssad_sac"), ("ssad_theta", "ssad_sac"), ("ssad", "ssad_sac_light"))
REPORTED_METRICS = ("mAP@0.1", "mAP@0.2", "mAP@0.3", "mAP@0.4", "mAP@0.5", "mAP@0.6", "mAP@0.7", "Avg 0.1:0.7",
                    "Avg 0.3:0.7")

PAPER_TABLE1 = {
    "SSAD": (72.2, 69.7, 65.2, 56.5, 45.5, 31.0, 17.0, 51.0),
    "SSAD+SAC": (75.5, 73.7, 69.1, 61.1, 51.4, 37.1, 22.8, 55.8),
}
"""The paper's Table I: THUMOS14 test mAP (%) at tIoU 0.1..0.7 and their mean (Yang et al. 2022)."""


def student_t_test(first: Sequence[float], second: Sequence[float]) -> dict:
    """Two-sample Student's t-test with pooled variance (Eqs. 9-10): ``{"t", "dof", "p", "pooled_std"}``."""
    from scipy.stats import t as student_t

    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    n1, n2 = len(first), len(second)
    if n1 < 2 or n2 < 2:
        raise ValueError(f"a t-test needs at least two runs per group, got {n1} and {n2}")
    pooled_variance = ((n1 - 1) * first.var(ddof=1) + (n2 - 1) * second.var(ddof=1)) / (n1 + n2 - 2)
    pooled_std = math.sqrt(pooled_variance)
    dof = n1 + n2 - 2
    difference = first.mean() - second.mean()
    if pooled_std == 0:
        statistic = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    else:
        statistic = difference / (pooled_std * math.sqrt(1 / n1 + 1 / n2))
    return {"t": float(statistic), "dof": dof, "p": float(2 * student_t.sf(abs(statistic), dof)),
            "pooled_std": pooled_std}


def git_state(path: Path | None = None) -> dict:
    """``{"commit", "dirty"}`` of the repository holding this package (``unknown`` outside a git checkout)."""
    folder = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                                    capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": dirty}


def provenance(device: str = "") -> dict:
    """Where and with what a result was produced."""
    return {
        **git_state(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device or ("cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def code_changed_since(commit: str, folder: str = "sac_minimal") -> bool | None:
    """Whether the package's code differs from ``commit`` (None when it cannot be told, e.g. no git)."""
    try:
        result = subprocess.run(["git", "diff", "--quiet", commit, "--", folder],
                                cwd=Path(__file__).resolve().parents[1], capture_output=True, check=False)
    except OSError:
        return None
    return {0: False, 1: True}.get(result.returncode)


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


def run_file(results_dir: Path, variant: str, seed: int) -> Path:
    return Path(results_dir) / "runs" / f"{variant}_seed{seed}.json"


def run_grid(base: TrainConfig, variants: Sequence[Variant], seeds: Sequence[int], results_dir: str | Path, *,
             checkpoints_dir: str | Path, comparisons: Sequence[tuple[str, str]] = (), shard: str | None = None,
             verbose: bool = False, seeds_together: bool = False, time_budget_s: float | None = None,
             compiled: bool = False) -> list[Path]:
    """Train this shard's cells of the (variant, seed) grid; each finished cell writes its run JSON. Cells whose JSON
    exists are skipped, so an interrupted experiment is resumed by running the same command again. The grid itself
    (variants, seeds, comparisons) is written to ``grid.json`` for :func:`merge_grid`.

    With ``seeds_together`` the unfinished seeds of a variant in this shard train in one loop
    (:func:`~sac_minimal.train.fit_runs`), which is how a GPU is kept busy at the official batch of 4. With
    ``time_budget_s`` the grid stops at an epoch boundary when the budget would be exceeded (checkpoints kept; the
    same call later resumes). ``compiled`` compiles each training step (:func:`~sac_minimal.train.fit_runs`).
    Returns this shard's run files; those not yet written are unfinished cells."""
    index, count = parse_shard(shard)
    results_dir, checkpoints_dir = Path(results_dir), Path(checkpoints_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "grid.json").write_text(json.dumps({
        "variants": [dataclasses.asdict(variant) for variant in variants], "seeds": list(seeds),
        "comparisons": [list(pair) for pair in comparisons]}, indent=1))
    cells = [(variant, seed) for seed in seeds for variant in variants][index::count]
    to_train = [(variant, seed) for variant, seed in cells if not run_file(results_dir, variant.name, seed).exists()]
    if seeds_together:
        batches = [[cell for cell in to_train if cell[0] == variant] for variant in variants]
    else:
        batches = [[cell] for cell in to_train]
    started = time.perf_counter()
    for batch in filter(None, batches):
        configs = [variant.config(base, seed) for variant, seed in batch]
        run_dirs = [checkpoints_dir / f"{variant.name}_seed{seed}" for variant, seed in batch]
        remaining = None if time_budget_s is None else time_budget_s - (time.perf_counter() - started)
        if remaining is not None and remaining <= 0:
            break
        results = fit_runs(configs, run_dirs, verbose=verbose, time_budget_s=remaining, compiled=compiled)
        if results is None:
            break
        for (variant, seed), result in zip(batch, results):
            result.extra["variant"] = variant.name
            result.extra["provenance"] = provenance(result.device)
            path = run_file(results_dir, variant.name, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result.to_dict(), indent=1))
            if verbose:
                print(f"{variant.name} seed {seed}: Avg 0.1:0.7 = {result.evaluation['Avg 0.1:0.7']:.4f} "
                      f"({result.seconds:.0f} s)")
    return [run_file(results_dir, variant.name, seed) for variant, seed in cells]


def run_table1(base: TrainConfig, seeds: Sequence[int], results_dir: str | Path, *, checkpoints_dir: str | Path,
               shard: str | None = None, verbose: bool = False, seeds_together: bool = False) -> list[Path]:
    """The Table I grid: the :data:`TABLE1` models over ``seeds`` (see :func:`run_grid`)."""
    return run_grid(base, TABLE1, seeds, results_dir, checkpoints_dir=checkpoints_dir,
                    comparisons=TABLE1_COMPARISONS, shard=shard, verbose=verbose, seeds_together=seeds_together)


def load_runs(results_dir: str | Path) -> list[RunResult]:
    files = sorted((Path(results_dir) / "runs").glob("*.json"))
    return [RunResult.from_dict(json.loads(path.read_text())) for path in files]


def summarize_grid(runs: Sequence[RunResult], variants: Sequence[str],
                   comparisons: Sequence[tuple[str, str]] = ()) -> dict:
    """Per-variant per-seed metrics, mean and std (ddof 1), and a t-test for each (baseline, candidate) pair on every
    metric (``t_tests["<candidate> vs <baseline>"]``)."""
    by_variant: dict = {name: {} for name in variants}
    for run in runs:
        name = run.extra.get("variant", run.config.model)
        if name in by_variant:
            by_variant[name][run.config.seed] = run.evaluation
    seeds = sorted({seed for per_seed in by_variant.values() for seed in per_seed})
    missing = [(name, seed) for name in variants for seed in seeds if seed not in by_variant[name]]
    if missing:
        raise ValueError(f"incomplete grid: missing {missing}; run the remaining shards, then merge")
    table = {"seeds": seeds, "variants": {}, "t_tests": {}}
    for name in variants:
        values = {metric: [by_variant[name][seed][metric] for seed in seeds] for metric in REPORTED_METRICS}
        table["variants"][name] = {
            "per_seed": values,
            "mean": {metric: float(np.mean(column)) for metric, column in values.items()},
            "std": {metric: float(np.std(column, ddof=1)) if len(column) > 1 else 0.0
                    for metric, column in values.items()},
        }
    if len(seeds) >= 2:
        for baseline, candidate in comparisons:
            table["t_tests"][f"{candidate} vs {baseline}"] = {
                metric: student_t_test(table["variants"][candidate]["per_seed"][metric],
                                       table["variants"][baseline]["per_seed"][metric])
                for metric in REPORTED_METRICS}
    return table


def summarize_table1(runs: Sequence[RunResult]) -> dict:
    return summarize_grid(runs, [variant.name for variant in TABLE1], TABLE1_COMPARISONS)


def merge_grid(results_dir: str | Path) -> dict:
    """Join the run files of ``results_dir`` into ``table.json`` and ``table.csv`` (with the runs' provenance)."""
    results_dir = Path(results_dir)
    runs = load_runs(results_dir)
    if not runs or not (results_dir / "grid.json").exists():
        raise FileNotFoundError(f"no grid.json and run files under {results_dir}; run the experiment first")
    grid = json.loads((results_dir / "grid.json").read_text())
    names = [variant["name"] for variant in grid["variants"]]
    table = summarize_grid(runs, names, [tuple(pair) for pair in grid["comparisons"]])
    table["labels"] = {variant["name"]: variant["label"] or variant["name"] for variant in grid["variants"]}
    table["config"] = runs[0].config.replace(model="ssad_sac", seed=0, sac_changes=()).to_dict()
    table["dataset"] = runs[0].dataset
    unique = sorted({json.dumps(run.extra.get("provenance", {}), sort_keys=True) for run in runs})
    table["provenance"] = [json.loads(entry) for entry in unique]
    table["wall_seconds"] = float(sum(run.seconds for run in runs))
    (results_dir / "table.json").write_text(json.dumps(table, indent=1))
    with open(results_dir / "table.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variant", "seed", *REPORTED_METRICS])
        for name, entry in table["variants"].items():
            for position, seed in enumerate(table["seeds"]):
                writer.writerow([name, seed, *(f"{entry['per_seed'][metric][position]:.6f}"
                                              for metric in REPORTED_METRICS)])
    return table



def format_table(table: dict, percent: bool = True, metrics: Sequence[str] = REPORTED_METRICS) -> str:
    """Mean +- std per variant and metric, then each comparison's difference of means and t-test on mAP@0.5 and
    Avg 0.1:0.7."""
    scale = 100 if percent else 1
    width = max(11, *(len(name) for name in table["variants"]))
    header = f"{'variant':<{width}} " + " ".join(f"{metric.replace('mAP@', ''):>11}" for metric in metrics)
    lines = [f"mean +- std over seeds {table['seeds']} ({'percent' if percent else 'fraction'})", header]
    for name, entry in table["variants"].items():
        cells = " ".join(f"{scale * entry['mean'][metric]:>5.1f}+-{scale * entry['std'][metric]:<4.1f}"
                         for metric in metrics)
        lines.append(f"{name:<{width}} {cells}")
    for comparison, tests in table["t_tests"].items():
        candidate, baseline = comparison.split(" vs ")
        for metric in ("mAP@0.5", "Avg 0.1:0.7"):
            test = tests[metric]
            difference = scale * (table["variants"][candidate]["mean"][metric]
                                  - table["variants"][baseline]["mean"][metric])
            lines.append(f"{comparison}, {metric}: difference {difference:+.2f}, t = {test['t']:.3f}, "
                         f"dof {test['dof']}, p = {test['p']:.4f}")
    return "\n".join(lines)

