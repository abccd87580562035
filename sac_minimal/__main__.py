"""Command line: ``python -m sac_minimal <command>``.

Commands:
    bench ot    time the transport solvers against POT (see sac_minimal.bench).
    bench sac   time SAC's forward + backward, its OT loss, and an SSAD-sized host.
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
    args = parser.parse_args(argv)

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
