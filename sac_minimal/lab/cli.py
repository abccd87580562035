"""Command line: ``python -m sac_minimal <command>``.

Commands:
    bench ot         time the transport solvers against POT (see sac_minimal.lab.bench).
    bench sac        time SAC's forward + backward, its OT loss, and the SSAD host.
    bench detection  time post-processing and evaluation at THUMOS14's test-split size.
    bench train      training steps/s of SSAD, SSAD+Θ, SSAD+SAC on this device, and SAC's overhead
                     (``--runs R``: R runs at once; ``--phases``: where one SSAD+SAC step spends its time).
    train            train one model for one seed (``--model ssad|ssad_theta|ssad_sac|reference``).
    table1           the Table I grid: models x worlds x h x seeds, tests across worlds, results with provenance.
    ablate           an ablation grid (attention, components, alternatives, variants, learning_rate, sweep_*)
                     or ``cost``.
    merge            join the run files of a (sharded) grid into table.json / table.csv.
    plateau          train SSAD and SSAD+SAC at one learning rate without decay; where their training loss levels
                     off (how many epochs the learning-rate arm needs).
    verify           re-run part of a recorded grid and compare it with the record.
    gpu-run          the prepared full-profile session for a lent GPU (``--dry-run``: tiny, on the CPU).
    book             build the book (``--cache``: re-execute only the notebooks whose code changed).
    data check       validate a dataset folder (annotations + features) and print a summary.
    data synth       write the synthetic surrogate (``--size quick|full``, ``--version 1|2``).
    data convert-two-stream  two-stream features in CoLA's layout -> one file per video (then ``data check``).

Every command's handler is a function below (``handle_<command>``) with what it does in its docstring.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

import torch

SEEDS_TOGETHER_HELP = "train each model's seeds in one batched loop (sac_minimal.lab.group; for GPUs)"
MAX_SEED = 2**32 - 1


def number_type(convert, accept, description: str):
    """An argparse type: ``convert`` the text, then check it with ``accept``; a clear error names what was
    expected."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text}")
        return value

    return parse


positive_int = number_type(int, lambda value: value >= 1, "a whole number >= 1")
MAX_RUNS_AT_ONCE = 64
"""The most runs ``bench train --runs`` trains at once: 64 official SSAD+SAC models (20.4 M parameters each) hold
about 21 GB of parameters, gradients and Adam state; more is a typo, refused before anything is allocated."""
runs_at_once = number_type(int, lambda value: 1 <= value <= MAX_RUNS_AT_ONCE,
                           f"a number of runs trained at once, 1 to {MAX_RUNS_AT_ONCE}")
seed_value = number_type(int, lambda value: 0 <= value <= MAX_SEED, f"a seed, a whole number in [0, {MAX_SEED}]")
positive_minutes = number_type(float, lambda value: math.isfinite(value) and value > 0,
                               "a positive, finite number of minutes")
heterogeneity_value = number_type(float, lambda value: math.isfinite(value) and value >= 0,
                                  "a heterogeneity h, a finite number >= 0")
RECORD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def banner() -> None:
    """One line saying what this process runs on."""
    device = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU"
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} CPU threads")


# ---------------------------------------------------------------------------------------------------- handlers


def handle_bench_ot(args: argparse.Namespace) -> int:
    """Batched transport solvers against POT on SAC-shaped problems."""
    from sac_minimal.lab.bench import bench_ot, format_ot_table

    print(format_ot_table(bench_ot(args.batches, args.lengths, repeats=args.repeats)))
    return 0


def handle_bench_sac(args: argparse.Namespace) -> int:
    """SAC and its OT loss (forward + backward) against an SSAD-sized host."""
    from sac_minimal.lab.bench import bench_sac, format_sac_table

    print(format_sac_table(bench_sac(args.batches, repeats=args.repeats)))
    return 0


def handle_bench_detection(args: argparse.Namespace) -> int:
    """Post-processing and evaluation at THUMOS14's test-split size."""
    from sac_minimal.lab.bench import bench_detection, format_detection_table

    print(format_detection_table(bench_detection(repeats=args.repeats)))
    return 0


def handle_bench_train(args: argparse.Namespace) -> int:
    """Training steps per second per model, or (``--phases``) where one SSAD+SAC step spends its time."""
    from sac_minimal.lab.bench import bench_step_phases, bench_train, format_step_phases, format_train_table

    if args.phases:
        print(format_step_phases(bench_step_phases(batch=args.batch, repeats=args.repeats, device=args.device,
                                                   preset=args.sac_preset)))
    else:
        print(format_train_table(bench_train(batch=args.batch, repeats=args.repeats, device=args.device,
                                             runs=args.runs)))
    return 0


def base_config(args: argparse.Namespace):
    """The profile with the command line's changes applied."""
    from sac_minimal.data.synthetic import GENERATOR_VERSION
    from sac_minimal.lab.config import profile

    changes = {"sac_preset": args.sac_preset, "device": args.device, "amp": args.amp, "data_root": args.data,
               "data_version": args.data_version or GENERATOR_VERSION,
               "accept_length_mismatch": args.accept_length_mismatch}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.solver is not None:
        changes["sac_changes"] = (("solver", args.solver),)
    if args.loss is not None:
        changes["loss"] = args.loss
    config = profile(args.profile, **changes)
    if args.batch_size is None:
        return config
    return config.with_batch_size(args.batch_size, allow_large_learning_rate=args.allow_large_lr)


def _budget(args: argparse.Namespace) -> float | None:
    return None if args.max_minutes is None else 60 * args.max_minutes


def handle_train(args: argparse.Namespace) -> int:
    """Train one model for one seed; checkpoints, metrics and the result go to ``--run-dir``."""
    from sac_minimal.data.locate import data_dir
    from sac_minimal.lab.train import fit

    config = base_config(args).replace(model=args.model, seed=args.seed, world=args.world,
                                       heterogeneity=args.heterogeneity)
    run_dir = Path(args.run_dir) if args.run_dir else (
        data_dir() / "cache" / "runs" / f"{args.profile}_{args.model}_w{args.world}_h{args.heterogeneity:g}"
                                        f"_s{args.seed}")
    result = fit(config, run_dir, verbose=True, time_budget_s=_budget(args), compiled=args.compile)
    if result is None:
        print(f"stopped by --max-minutes; checkpoint in {run_dir}; run the same command again to continue")
        return 0
    print(json.dumps(result.evaluation, indent=1))
    print(f"metrics, checkpoint and result in {run_dir}")
    return 0


def record_name(prefix: str, args: argparse.Namespace, config) -> str:
    """``results/<name>``: the experiment, the profile and the data (surrogate version or real THUMOS14). A name
    given with ``--name`` is one folder name (letters, digits, ``_ . -``), so a record never lands outside
    ``results/``."""
    from sac_minimal.lab.train import resolve_data_root

    if args.name is not None:
        if not RECORD_NAME.fullmatch(args.name) or args.name in (".", ".."):
            raise ValueError(f"--name must be one folder name inside results/ (letters, digits, '_', '.', '-'), "
                             f"got {args.name!r}")
        return args.name
    kind = resolve_data_root(config)[1]
    data = f"v{config.data_version}" if kind == "synthetic" else kind
    return f"{prefix}_{args.profile}_{data}"


def run_named_experiment(experiment_name: str, prefix: str, args: argparse.Namespace) -> int:
    """Train a named experiment's grid into ``results/<name>``, then merge and print it (or say what is left)."""
    from sac_minimal.data.locate import data_dir
    from sac_minimal.lab.acceptance import format_acceptance, record_acceptance
    from sac_minimal.lab.experiments import check_units, run_experiment
    from sac_minimal.lab.tables import format_table, merge_grid
    from sac_minimal.lab.train import resolve_data_root
    from sac_minimal.lab.variants import experiment

    base = base_config(args)
    chosen = experiment(experiment_name)
    declared = dict(chosen.config_changes).get("data_version")
    if args.data_version is not None and declared is not None and args.data_version != declared:
        raise ValueError(f"{experiment_name} is defined on generator v{declared}; --data-version {args.data_version} "
                         "would silently be replaced by it: leave --data-version out, or choose the experiment of "
                         f"generator v{args.data_version}")
    results_dir = Path("results") / record_name(prefix, args, chosen.base_config(base))
    fixed = resolve_data_root(chosen.base_config(base), create=False)[1] != "synthetic"
    check_units(args.worlds or ((0,) if fixed else chosen.worlds),
                range(args.seeds) if args.seeds is not None else range(chosen.seeds))
    paths = run_experiment(chosen, base, results_dir, checkpoints_dir=data_dir() / "cache" / "runs",
                           worlds=args.worlds, heterogeneities=args.heterogeneity,
                           seeds=None if args.seeds is None else range(args.seeds), shard=args.shard, verbose=True,
                           seeds_together=args.seeds_together, time_budget_s=_budget(args), compiled=args.compile)
    unfinished = [path.stem for path in paths if not path.exists()]
    if unfinished:
        print(f"stopped by --max-minutes with {len(unfinished)} runs unfinished ({', '.join(unfinished)}); "
              "run the same command again to continue")
    elif args.shard is None:
        print(format_table(merge_grid(results_dir)))
        if experiment_name.startswith("acceptance"):
            print(format_acceptance(record_acceptance(results_dir)))
    else:
        print(f"shard {args.shard} done; when every shard is done: python -m sac_minimal merge {results_dir}")
    return 0


def handle_table1(args: argparse.Namespace) -> int:
    """Table I: SSAD, the reference gate and the SAC variants over worlds, h and seeds, recorded in ``results/``."""
    return run_named_experiment("table1", "table1", args)


def handle_ablate(args: argparse.Namespace) -> int:
    """An ablation grid recorded in ``results/ablation_<name>_...``, or (``cost``) Table VIII's counts."""
    if args.experiment == "cost":
        return print_cost_table()
    return run_named_experiment(args.experiment, f"ablation_{args.experiment}", args)


def handle_plateau(args: argparse.Namespace) -> int:
    """Where the training loss of SSAD and SSAD+SAC levels off at one learning rate; written to ``results/``."""
    from sac_minimal.data.locate import data_dir
    from sac_minimal.lab.experiments import measure_plateau
    from sac_minimal.files import write_json_atomic

    base = base_config(args).replace(learning_rate=args.learning_rate, world=args.world)
    result = measure_plateau(base, ("ssad", "ssad_sac"), data_dir() / "cache" / "runs")
    path = Path("results") / f"plateau_lr{args.learning_rate:g}_{args.profile}_v{base.data_version}.json"
    write_json_atomic(path, result)
    for model, entry in result["models"].items():
        print(f"{model}: training loss {entry['losses'][0]:.3f} -> {entry['losses'][-1]:.3f}, plateau from epoch "
              f"{entry['plateau_epoch']}")
    print(f"written to {path}")
    return 0


def handle_merge(args: argparse.Namespace) -> int:
    """Join the run files of a grid's shards into table.json and table.csv (and, for an acceptance grid, record its
    acceptance test in acceptance.json)."""
    from sac_minimal.lab.acceptance import format_acceptance, record_acceptance
    from sac_minimal.lab.tables import format_table, merge_grid, read_grid

    print(format_table(merge_grid(args.results_dir)))
    if read_grid(Path(args.results_dir))["title"].startswith("Acceptance"):
        print(format_acceptance(record_acceptance(args.results_dir)))
    return 0


def handle_verify(args: argparse.Namespace) -> int:
    """Re-run part of a recorded grid with its recorded configs and compare with the record (exit 1 on failure)."""
    from sac_minimal.lab.records import (
        every_variant_checks,
        format_verification,
        parse_checks,
        record_status,
        recorded_seconds,
        verify_record,
    )

    if bool(args.checks) == args.every_variant:
        raise ValueError("name the runs to re-make (run:epochs ...) or pass --every-variant, one of the two")
    print(record_status(args.results_dir).format())
    checks = every_variant_checks(args.results_dir) if args.every_variant else parse_checks(args.checks)
    print(f"{len(checks)} check(s); recorded cost {recorded_seconds(args.results_dir, checks) / 60:.1f} min on the "
          "record's machine", flush=True)
    report = verify_record(args.results_dir, checks)
    print(format_verification(report))
    return 0 if all(row.passed for row in report) else 1


def handle_gpu_run(args: argparse.Namespace) -> int:
    """The prepared full-profile GPU session (sac_minimal.lab.gpu_session): surrogate, benchmarks, Table I and
    Table VI under one time budget, everything written under ``--out``."""
    from sac_minimal.lab.gpu_session import format_session, gpu_full_profile

    summary = gpu_full_profile(args.out, max_minutes=args.max_minutes, seeds=args.seeds, dry_run=args.dry_run)
    print(format_session(summary))
    return 0


def handle_book(args: argparse.Namespace) -> int:
    """Build the book from the repository root: as CI does (every notebook executed, strict), or with ``--cache``
    re-executing only the notebooks whose code cells changed (Jupyter Book's ``execute_notebooks: cache``, set in a
    copy of ``_config.yml`` under ``_build/``; the committed configuration keeps ``force``)."""
    import shutil
    import subprocess

    from sac_minimal.data.locate import REPOSITORY

    if args.execute:
        return execute_notebooks(args.execute)
    if shutil.which("jupyter-book") is None:
        raise FileNotFoundError('jupyter-book is not installed; pip install -e ".[book]"')
    command = ["jupyter-book", "build", str(REPOSITORY), "-W", "-n", "--keep-going"]
    if args.cache:
        try:
            import yaml
        except ImportError:
            raise FileNotFoundError('--cache needs PyYAML, which is not installed; pip install -e ".[book]"') from None
        config = yaml.safe_load((REPOSITORY / "_config.yml").read_text())
        config["execute"]["execute_notebooks"] = "cache"
        layered = REPOSITORY / "_build" / "_config_cache.yml"
        layered.parent.mkdir(exist_ok=True)
        layered.write_text(yaml.safe_dump(config, sort_keys=False))
        command += ["--config", str(layered)]
    print(" ".join(command))
    return subprocess.run(command, check=False).returncode


def execute_notebooks(paths: list[str]) -> int:
    """Execute notebooks as the book build does (from their folder, no cell may fail, nothing written to stderr),
    without building pages: how CI runs chapters 08-12 a second time in another numeric environment."""
    import time

    try:
        import nbclient
        import nbformat
    except ImportError:
        raise FileNotFoundError('executing notebooks needs nbclient; pip install -e ".[book]"') from None
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: name the notebooks to execute, e.g. notebooks/08_testbed.ipynb")
        started = time.perf_counter()
        notebook = nbformat.read(path, as_version=4)
        try:
            nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
        except nbclient.exceptions.CellExecutionError as error:
            print(f"error: {path} failed:\n{error}", file=sys.stderr)
            return 1
        written = [output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
                   if output.get("name") == "stderr"]
        if written:
            print(f"error: {path} wrote to stderr (the book build treats that as a failure):\n"
                  + "".join(written)[:2000], file=sys.stderr)
            return 1
        print(f"{path}: executed in {time.perf_counter() - started:.0f} s")
    return 0


def print_cost_table() -> int:
    """Table VIII at the official widths, beside the paper's figures; also written to results/ablation_cost.json."""
    from sac_minimal.lab.ablations import cost_table, format_cost_table
    from sac_minimal.files import write_json_atomic
    from sac_minimal.lab.provenance import provenance

    rows = cost_table()
    print(format_cost_table(rows))
    write_json_atomic(Path("results/ablation_cost.json"), {"rows": rows, "provenance": provenance()})
    return 0


def handle_data_synth(args: argparse.Namespace) -> int:
    """Write the surrogate into an empty folder (or over a surrogate of the same generator version)."""
    from sac_minimal.data.synthetic import write_synthetic_thumos

    metadata = write_synthetic_thumos(args.root, size=args.size, seed=args.seed, version=args.version,
                                      heterogeneity=args.heterogeneity)
    print(f"wrote the {args.size} synthetic surrogate v{args.version} (world {args.seed}, h "
          f"{args.heterogeneity:g}) to {args.root} in {metadata['seconds_to_generate']} s")
    return 0


def handle_data_convert(args: argparse.Namespace) -> int:
    """Convert a two-stream release (CoLA's layout) into one feature file per video, then check it."""
    from sac_minimal.data.convert import convert_two_stream

    summary = convert_two_stream(args.source, args.root, frames_per_step=args.frames_per_step)
    print(f"wrote {summary['videos']} feature files to {args.root}; streams of different lengths (trimmed): "
          f"{len(summary['trimmed'])}; one stream only (skipped): {', '.join(summary['unpaired']) or 'none'}")
    print(f"next: python -m sac_minimal data check --root {args.root}")
    return 0


def handle_data_check(args: argparse.Namespace) -> int:
    """Validate a dataset folder and print what was found (exit 1 on problems)."""
    from sac_minimal.data.check import check_dataset
    from sac_minimal.data.thumos14 import DEFAULT_EXCLUDED_VIDEOS

    exclude = () if args.keep_all else DEFAULT_EXCLUDED_VIDEOS
    print(f"excluding: {', '.join(exclude) if exclude else 'nothing'}")
    report = check_dataset(args.root, width=args.width, channel_order=args.channel_order, exclude=exclude)
    print(report.format())
    return 0 if report.ok else 1


# ---------------------------------------------------------------------------------------------------- parser


def add_run_arguments(command: argparse.ArgumentParser) -> None:
    """The options shared by ``train``, ``table1`` and ``ablate``."""
    from sac_minimal.lab.config import SAC_PRESETS
    from sac_minimal.data.synthetic import GENERATOR_VERSION, GENERATOR_VERSIONS
    from sac_minimal.detection import LOSSES

    command.add_argument("--profile", choices=["quick", "full"], default="quick")
    command.add_argument("--sac-preset", choices=list(SAC_PRESETS), default="official")
    command.add_argument("--data", default=None, help="dataset folder (default: see sac_minimal.lab.config)")
    command.add_argument("--data-version", type=int, choices=list(GENERATOR_VERSIONS), default=None,
                         help=f"surrogate generator version when no real data is used (default {GENERATOR_VERSION}, "
                              "or the one a named experiment declares)")
    command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    command.add_argument("--epochs", type=positive_int, default=None, help="override the profile's epochs")
    command.add_argument("--amp", action="store_true", help="bf16 autocast for SSAD on CUDA")
    command.add_argument("--batch-size", type=positive_int, default=None,
                         help="another batch size; the learning rate is scaled linearly with it")
    command.add_argument("--allow-large-lr", action="store_true",
                         help="train even when --batch-size scales the learning rate above 0.01")
    command.add_argument("--loss", choices=sorted(LOSSES), default=None,
                         help="SSAD's loss (default: the profile's, the official code's): official_detached drops "
                              "the overlap target's gradient; book_v1 is the loss of the book's first records")
    command.add_argument("--solver", choices=["sinkhorn", "entropic"], default=None,
                         help="SAC's transport solver: Algorithm 1 (N iterations) or the exact 2 x T root-find")
    command.add_argument("--compile", action="store_true",
                         help="torch.compile each training step (CUDA graphs on a GPU); the recipe is unchanged")
    command.add_argument("--accept-length-mismatch", action="store_true",
                         help="train even on feature files whose rows do not fit their video's duration x fps / 4")
    command.add_argument("--max-minutes", type=positive_minutes, default=None,
                         help="stop at an epoch boundary before this much time is spent; rerun to continue")


def add_grid_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--seeds", type=positive_int, default=None,
                         help="seeds 0..N-1 in every world (default: the experiment's)")
    command.add_argument("--worlds", type=seed_value, nargs="+", default=None,
                         help="surrogate worlds (default: the experiment's confirmatory worlds)")
    command.add_argument("--heterogeneity", type=heterogeneity_value, nargs="+", default=None,
                         help="surrogate heterogeneity values h (default: the experiment's)")
    command.add_argument("--name", default=None, help="results/<name> (default <experiment>_<profile>_<data>)")
    command.add_argument("--shard", default=None, help="i/n: run every n-th cell of the grid, starting at i")
    command.add_argument("--seeds-together", action="store_true", help=SEEDS_TOGETHER_HELP)


def add_bench_commands(commands) -> None:
    from sac_minimal.lab.config import SAC_PRESETS

    bench = commands.add_parser("bench", help="benchmarks").add_subparsers(dest="target", required=True)
    ot = bench.add_parser("ot", help="transport solvers vs POT")
    ot.add_argument("--batches", type=positive_int, nargs="+", default=[64, 256, 1024])
    ot.add_argument("--lengths", type=positive_int, nargs="+", default=[128, 512, 2048])
    ot.add_argument("--repeats", type=positive_int, default=5)
    ot.set_defaults(handler=handle_bench_ot)
    sac = bench.add_parser("sac", help="SAC and its OT loss vs an SSAD-sized host")
    sac.add_argument("--batches", type=positive_int, nargs="+", default=[4, 16, 64])
    sac.add_argument("--repeats", type=positive_int, default=3)
    sac.set_defaults(handler=handle_bench_sac)
    detection = bench.add_parser("detection", help="post-processing and evaluation speed")
    detection.add_argument("--repeats", type=positive_int, default=3)
    detection.set_defaults(handler=handle_bench_detection)
    train = bench.add_parser("train", help="training steps per second")
    train.add_argument("--batch", type=positive_int, default=4)
    train.add_argument("--repeats", type=positive_int, default=10)
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument("--runs", type=runs_at_once, default=1, help="runs trained at once (sac_minimal.lab.group)")
    train.add_argument("--phases", action="store_true",
                       help="instead: where one SSAD+SAC step spends its time (data, SAC, transport, SSAD, ...)")
    train.add_argument("--sac-preset", choices=list(SAC_PRESETS), default="official", help="SAC preset for --phases")
    train.set_defaults(handler=handle_bench_train)


def add_data_commands(commands) -> None:
    from sac_minimal.data.synthetic import GENERATOR_VERSION, GENERATOR_VERSIONS

    data = commands.add_parser("data", help="datasets").add_subparsers(dest="target", required=True)
    check = data.add_parser("check", help="validate a dataset folder")
    check.add_argument("--root", required=True, help="folder holding annotations/ and i3d_features/")
    check.add_argument("--width", type=positive_int, default=None,
                       help="feature width (default: feature_format.json in the folder, else 2048)")
    check.add_argument("--channel-order", choices=["rgb_flow", "flow_rgb"], default=None,
                       help="which half of a feature row is RGB (default: feature_format.json, else rgb_flow)")
    check.add_argument("--keep-all", action="store_true", help="do not exclude the commonly dropped videos")
    check.set_defaults(handler=handle_data_check)
    synth = data.add_parser("synth", help="write the synthetic surrogate")
    synth.add_argument("--root", required=True)
    synth.add_argument("--size", choices=["tiny", "quick", "full"], default="quick")
    synth.add_argument("--seed", type=seed_value, default=0, help="the world")
    synth.add_argument("--heterogeneity", type=heterogeneity_value, default=1.0,
                       help="h: 0 (every modality equally reliable) to 1 (the full spread)")
    synth.add_argument("--version", type=int, choices=list(GENERATOR_VERSIONS), default=GENERATOR_VERSION)
    synth.set_defaults(handler=handle_data_synth)
    convert = data.add_parser("convert-two-stream",
                              help="features/<split>/{rgb,flow}/<video>.npy (CoLA) -> i3d_features/<video>.npy")
    convert.add_argument("--source", required=True, help="the release's folder (holding features/)")
    convert.add_argument("--root", required=True, help="the dataset folder to write")
    convert.add_argument("--frames-per-step", type=positive_int, default=16,
                         help="video frames per feature row in the release (CoLA: 16)")
    convert.set_defaults(handler=handle_data_convert)


def build_parser() -> argparse.ArgumentParser:
    from sac_minimal.lab.config import MODELS
    from sac_minimal.lab.variants import EXPERIMENTS

    parser = argparse.ArgumentParser(prog="python -m sac_minimal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default 1: CPU runs are then bit-identical on any core count, "
                             "and results recorded in results/ can be re-verified)")
    commands = parser.add_subparsers(dest="command", required=True)
    add_bench_commands(commands)
    train = commands.add_parser("train", help="train one model for one seed")
    add_run_arguments(train)
    train.add_argument("--model", choices=list(MODELS), default="ssad_sac")
    train.add_argument("--seed", type=seed_value, default=0)
    train.add_argument("--world", type=seed_value, default=0, help="the surrogate's world (its seed)")
    train.add_argument("--heterogeneity", type=heterogeneity_value, default=1.0, help="the surrogate's h")
    train.add_argument("--run-dir", default=None, help="checkpoints and metrics (default data/cache/runs/...)")
    train.set_defaults(handler=handle_train)
    table1 = commands.add_parser("table1", help="models x worlds x h x seeds, tests across worlds, provenance")
    add_run_arguments(table1)
    add_grid_arguments(table1)
    table1.set_defaults(handler=handle_table1)
    ablate = commands.add_parser("ablate", help="ablation grids (Tables V-VII, sweeps) and the cost table (VIII)")
    add_run_arguments(ablate)
    ablate.add_argument("experiment", choices=sorted(set(EXPERIMENTS) - {"table1"}) + ["cost"])
    add_grid_arguments(ablate)
    ablate.set_defaults(handler=handle_ablate)
    plateau = commands.add_parser("plateau", help="epochs a learning rate needs to level off")
    add_run_arguments(plateau)
    plateau.add_argument("--learning-rate", type=number_type(float, lambda value: 0 < value <= 1 and
                                                            math.isfinite(value), "a learning rate in (0, 1]"),
                         default=1e-4)
    plateau.add_argument("--world", type=seed_value, default=0, help="a development world (never evidence)")
    plateau.set_defaults(handler=handle_plateau)
    add_record_commands(commands)
    add_data_commands(commands)
    return parser


def add_record_commands(commands) -> None:
    """``merge``, ``verify``, ``book`` and ``gpu-run``: what joins, checks and publishes records."""
    merge = commands.add_parser("merge", help="join the run files of a grid")
    merge.add_argument("results_dir")
    merge.set_defaults(handler=handle_merge)
    verify = commands.add_parser("verify", help="re-run part of a recorded grid and compare with the record")
    verify.add_argument("results_dir")
    verify.add_argument("checks", nargs="*",
                        help="run:epochs, run a run file's name (e.g. ssad_w3_h1_s0) and epochs a number >= 1 or "
                             "'all' (the whole run and its mAP), e.g. ssad_w3_h1_s0:1")
    verify.add_argument("--every-variant", action="store_true",
                        help="re-make one whole run of every variant of the record (the maintainer's check)")
    verify.set_defaults(handler=handle_verify)

    book = commands.add_parser("book", help="build the book (as CI does, or --cache for quick local rebuilds)")
    book.add_argument("--cache", action="store_true",
                      help="re-execute only notebooks whose code changed (a change to sac_minimal is not seen)")
    book.add_argument("--execute", nargs="+", metavar="NOTEBOOK",
                      help="only execute these notebooks, as the build would (no pages are written)")
    book.set_defaults(handler=handle_book)
    gpu = commands.add_parser("gpu-run", help="the prepared full-profile session for a lent GPU")
    gpu.add_argument("--out", required=True, help="folder for the data, checkpoints, records and session.json")
    gpu.add_argument("--max-minutes", type=positive_minutes, default=9.0, help="time budget of the whole session")
    gpu.add_argument("--seeds", type=runs_at_once, default=6, help="seeds 0..N-1, trained together")
    gpu.add_argument("--dry-run", action="store_true", help="the same steps at a tiny size on the CPU")
    gpu.set_defaults(handler=handle_gpu_run)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    if args.threads > cores:
        parser.error(f"--threads {args.threads}: this machine has {cores} CPU cores; use at most that many")
    torch.set_num_threads(args.threads)
    banner()
    try:
        return args.handler(args)
    except (ValueError, OSError, FloatingPointError) as error:  # OSError: missing files, a full disk (WriteError)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: every finished epoch and run is on disk, written atomically
        print("\ninterrupted: what finished is kept (checkpoints at epoch boundaries, run files written whole); "
              "run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
