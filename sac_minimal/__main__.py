"""Command line: ``python -m sac_minimal <command>``.

Commands:
    bench ot    time the transport solvers against POT (see sac_minimal.bench).
    bench sac   time SAC's forward + backward, its OT loss, and the SSAD host.
    bench detection  time post-processing and evaluation at THUMOS14's test-split size.
    bench train      training steps/s of SSAD, SSAD+Θ, SSAD+SAC on this device, and SAC's overhead
                     (``--runs R``: R runs at once; ``--phases``: where one SSAD+SAC step spends its time).
    train       train one model for one seed (``--model ssad|ssad_theta|ssad_sac --profile quick|full``).
    table1      the Table I grid: models x seeds, t-tests, results with provenance (``--shard i/n``).
    ablate      an ablation grid (attention, components, alternatives, variants, sweep_*) or ``cost``.
    merge       join the run files of a (sharded) table1 into table1.json / table1.csv.
    data check  validate a dataset folder (annotations + features) and print a summary.
    data synth  write the synthetic surrogate (``--size quick|full``) in the ActionFormer layout.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

SEEDS_TOGETHER_HELP = "train each model's seeds in one batched loop (sac_minimal.group; for GPUs)"


def main(argv: list[str] | None = None) -> int:
    from sac_minimal.config import SAC_PRESETS

    parser = argparse.ArgumentParser(prog="python -m sac_minimal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench", help="benchmarks")
    bench_targets = bench.add_subparsers(dest="target", required=True)
    bench_ot = bench_targets.add_parser("ot", help="transport solvers vs POT")
    bench_ot.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    bench_ot.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048])
    bench_ot.add_argument("--repeats", type=int, default=5)
    bench_ot.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    bench_sac = bench_targets.add_parser("sac", help="SAC and its OT loss vs an SSAD-sized host")
    bench_sac.add_argument("--batches", type=int, nargs="+", default=[4, 16, 64])
    bench_sac.add_argument("--repeats", type=int, default=3)
    bench_detection = bench_targets.add_parser("detection", help="post-processing and evaluation speed")
    bench_detection.add_argument("--repeats", type=int, default=3)
    bench_train = bench_targets.add_parser("train", help="training steps per second")
    bench_train.add_argument("--batch", type=int, default=4)
    bench_train.add_argument("--repeats", type=int, default=10)
    bench_train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    bench_train.add_argument("--runs", type=int, default=1, help="runs trained at once (sac_minimal.group)")
    bench_train.add_argument("--phases", action="store_true",
                             help="instead: where one SSAD+SAC step spends its time (data, SAC, transport, SSAD, ...)")
    bench_train.add_argument("--sac-preset", choices=list(SAC_PRESETS), default="official",
                             help="SAC preset for --phases")

    def add_run_arguments(command):
        command.add_argument("--profile", choices=["quick", "full"], default="quick")
        command.add_argument("--sac-preset", choices=list(SAC_PRESETS), default="official")
        command.add_argument("--data", default=None, help="dataset folder (default: see sac_minimal.config)")
        command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        command.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
        command.add_argument("--amp", action="store_true", help="bf16 autocast for SSAD on CUDA")
        command.add_argument("--batch-size", type=int, default=None,
                             help="another batch size; the learning rate is scaled linearly with it")
        command.add_argument("--solver", choices=["sinkhorn", "entropic"], default=None,
                             help="SAC's transport solver: Algorithm 1 (N iterations) or the exact 2 x T root-find")
        command.add_argument("--compile", action="store_true",
                             help="torch.compile each training step (CUDA graphs on a GPU); the recipe is unchanged")
        command.add_argument("--max-minutes", type=float, default=None,
                             help="stop at an epoch boundary before this much time is spent; rerun to continue")

    train = commands.add_parser("train", help="train one model for one seed")
    add_run_arguments(train)
    train.add_argument("--model", choices=["ssad", "ssad_theta", "ssad_sac"], default="ssad_sac")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--run-dir", default=None, help="checkpoints and metrics (default data/cache/runs/...)")
    table1 = commands.add_parser("table1", help="models x seeds, t-tests, results with provenance")
    add_run_arguments(table1)
    table1.add_argument("--seeds", type=int, default=6, help="seeds 0..N-1")
    table1.add_argument("--name", default=None, help="results/<name> (default table1_<profile>)")
    table1.add_argument("--shard", default=None, help="i/n: run every n-th cell of the grid, starting at i")
    table1.add_argument("--seeds-together", action="store_true", help=SEEDS_TOGETHER_HELP)
    ablate = commands.add_parser("ablate", help="ablation grids (Tables V-VII, sweeps) and the cost table (VIII)")
    add_run_arguments(ablate)
    ablate.add_argument("name", help="attention | components | alternatives | variants | sweep_eta | sweep_k | "
                                     "sweep_lambda_s | sweep_lambda_f | cost")
    ablate.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    ablate.add_argument("--shard", default=None, help="i/n: run every n-th cell of the grid, starting at i")
    ablate.add_argument("--seeds-together", action="store_true", help=SEEDS_TOGETHER_HELP)
    merge = commands.add_parser("merge", help="join the run files of a table1 or ablation")
    merge.add_argument("results_dir")

    data = commands.add_parser("data", help="datasets")
    data_targets = data.add_subparsers(dest="target", required=True)
    data_check = data_targets.add_parser("check", help="validate a dataset folder")
    data_check.add_argument("--root", required=True, help="folder holding annotations/ and i3d_features/")
    data_check.add_argument("--width", type=int, default=None,
                            help="feature width (default: feature_format.json in the folder, else 2048)")
    data_check.add_argument("--channel-order", choices=["rgb_flow", "flow_rgb"], default=None,
                            help="which half of a feature row is RGB (default: feature_format.json, else rgb_flow)")
    data_check.add_argument("--keep-all", action="store_true", help="do not exclude the commonly dropped videos")
    data_synth = data_targets.add_parser("synth", help="write the synthetic surrogate")
    data_synth.add_argument("--root", required=True)
    data_synth.add_argument("--size", choices=["quick", "full"], default="quick")
    data_synth.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "data":
        return run_data_command(args)
    if args.command in ("train", "table1", "merge", "ablate"):
        return run_training_command(args)
    if args.command == "bench" and args.target == "train":
        from sac_minimal.bench import bench_train, format_train_table

        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
        if args.phases:
            from sac_minimal.bench import bench_step_phases, format_step_phases

            print(format_step_phases(bench_step_phases(batch=args.batch, repeats=args.repeats, device=args.device,
                                                       preset=args.sac_preset)))
            return 0
        print(format_train_table(bench_train(batch=args.batch, repeats=args.repeats, device=args.device,
                                                    runs=args.runs)))

    if args.command == "bench" and args.target == "ot":
        from sac_minimal.bench import bench_ot as run_bench_ot
        from sac_minimal.bench import format_ot_table

        if args.threads:
            torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
        print(format_ot_table(run_bench_ot(args.batches, args.lengths, repeats=args.repeats)))
    if args.command == "bench" and args.target == "sac":
        from sac_minimal.bench import bench_sac as run_bench_sac
        from sac_minimal.bench import format_sac_table

        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
        print(format_sac_table(run_bench_sac(args.batches, repeats=args.repeats)))
    if args.command == "bench" and args.target == "detection":
        from sac_minimal.bench import bench_detection as run_bench_detection
        from sac_minimal.bench import format_detection_table

        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
        print(format_detection_table(run_bench_detection(repeats=args.repeats)))
    return 0


def run_training_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sac_minimal.config import profile
    from sac_minimal.data.locate import data_dir
    from sac_minimal.experiments import format_table, merge_grid

    if args.command == "merge":
        print(format_table(merge_grid(args.results_dir)))
        return 0
    changes = {"sac_preset": args.sac_preset, "device": args.device, "amp": args.amp, "data_root": args.data}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.solver is not None:
        changes["sac_changes"] = (("solver", args.solver),)
    base = profile(args.profile, **changes)
    budget = None if args.max_minutes is None else 60 * args.max_minutes
    if args.batch_size is not None:
        base = base.with_batch_size(args.batch_size)
    if args.command == "train":
        from sac_minimal.train import fit

        config = base.replace(model=args.model, seed=args.seed)
        run_dir = Path(args.run_dir) if args.run_dir else (
            data_dir() / "cache" / "runs" / f"{args.profile}_{args.model}_seed{args.seed}")
        result = fit(config, run_dir, verbose=True, time_budget_s=budget, compiled=args.compile)
        if result is None:
            print(f"stopped by --max-minutes; checkpoint in {run_dir}; run the same command again to continue")
            return 0
        print(json.dumps(result.evaluation, indent=1))
        print(f"metrics, checkpoint and result in {run_dir}")
        return 0
    if args.command == "ablate" and args.name == "cost":
        return print_cost_table()
    from sac_minimal.experiments import TABLE1, TABLE1_COMPARISONS, run_grid

    if args.command == "ablate":
        from sac_minimal.ablations import EXPERIMENTS, variants_of

        name = f"ablation_{args.name}_{args.profile}"
        variants, comparisons = variants_of(args.name), EXPERIMENTS[args.name].comparisons
    else:
        name = args.name or f"table1_{args.profile}"
        variants, comparisons = TABLE1, TABLE1_COMPARISONS
    results_dir = Path("results") / name
    paths = run_grid(base, variants, range(args.seeds), results_dir,
                     checkpoints_dir=data_dir() / "cache" / "runs" / name, comparisons=comparisons, shard=args.shard,
                     verbose=True, seeds_together=args.seeds_together, time_budget_s=budget,
                     compiled=args.compile)
    unfinished = [path.stem for path in paths if not path.exists()]
    if unfinished:
        print(f"stopped by --max-minutes with {len(unfinished)} runs unfinished ({', '.join(unfinished)}); "
              "run the same command again to continue")
    elif args.shard is None:
        print(format_table(merge_grid(results_dir)))
    else:
        print(f"shard {args.shard} done; when every shard is done: python -m sac_minimal merge {results_dir}")
    return 0


def print_cost_table() -> int:
    """Table VIII at the official widths, beside the paper's figures; also written to results/ablation_cost.json."""
    from pathlib import Path

    from sac_minimal.ablations import PAPER_COST, cost_table
    from sac_minimal.experiments import provenance

    rows = cost_table()
    for row in rows:
        print(f"{row['model']:<20} {row['parameters_M']:6.2f} M parameters (Θ {row['theta_parameters_M']:.2f} M), "
              f"{row['GFLOPs']:.3f} GFLOPs per window; over SSAD +{row['added_parameters_M']:.2f} M, "
              f"+{row['added_GFLOPs']:.3f} GFLOPs")
    print("paper (Table VIII): " + ", ".join(f"{model} {params} M / {flops} GFLOPs"
                                             for model, (params, flops) in PAPER_COST.items())
          + f"; SAC adds +{PAPER_COST['SSAD+SAC'][0] - PAPER_COST['SSAD'][0]:.2f} M, "
            f"+{PAPER_COST['SSAD+SAC'][1] - PAPER_COST['SSAD'][1]:.2f} GFLOPs")
    Path("results").mkdir(exist_ok=True)
    Path("results/ablation_cost.json").write_text(json.dumps({"rows": rows, "provenance": provenance()}, indent=1))
    return 0


def run_data_command(args: argparse.Namespace) -> int:
    import dataclasses

    from sac_minimal.data.thumos14 import DEFAULT_EXCLUDED_VIDEOS, FeatureFormat

    if args.target == "synth":
        from sac_minimal.data.synthetic import write_synthetic_thumos

        metadata = write_synthetic_thumos(args.root, size=args.size, seed=args.seed)
        print(f"wrote the {args.size} synthetic surrogate (seed {args.seed}) to {args.root} "
              f"in {metadata['seconds_to_generate']} s")
        return 0
    from sac_minimal.data.check import check_dataset

    feature_format = FeatureFormat.from_root(args.root)
    overrides = {key: value for key, value in (("width", args.width), ("channel_order", args.channel_order))
                 if value is not None}
    feature_format = dataclasses.replace(feature_format, **overrides)
    exclude = () if args.keep_all else DEFAULT_EXCLUDED_VIDEOS
    print(f"excluding: {', '.join(exclude) if exclude else 'nothing'}")
    report = check_dataset(args.root, feature_format=feature_format, exclude=exclude)
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
