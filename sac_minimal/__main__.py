"""Command line: ``python -m sac_minimal <command>``.

Commands:
    bench ot    time the transport solvers against POT (see sac_minimal.bench).
    bench sac   time SAC's forward + backward, its OT loss, and an SSAD-sized host.
    bench detection  time post-processing and evaluation at THUMOS14's test-split size.
    data check  validate a dataset folder (annotations + features) and print a summary.
    data synth  write the synthetic surrogate (``--size quick|full``) in the ActionFormer layout.
"""

from __future__ import annotations

import argparse
import sys

import torch


def main(argv: list[str] | None = None) -> int:
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
