"""Run the benchmarks one after the other: ``python -m benchmarks [--quick] [name ...]``."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = ("throughput", "latency", "biglogs", "concurrency")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(BENCHMARKS)} (default all)")
    args = parser.parse_args(argv)
    if unknown := set(args.names) - set(BENCHMARKS):
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    status = 0
    for name in args.names or BENCHMARKS:
        print(f"\n## {name}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        status = module.main(["--quick"] if args.quick else []) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
