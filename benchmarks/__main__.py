"""Run the benchmarks one after the other: ``python -m benchmarks [--quick] [name ...]``.

Each runs in a process of its own: Django's settings (its database) are fixed per process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

BENCHMARKS = ("throughput", "latency", "biglogs", "search", "concurrency")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(BENCHMARKS)} (default all)")
    args = parser.parse_args(argv)
    if unknown := set(args.names) - set(BENCHMARKS):
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    status = 0
    for name in args.names or BENCHMARKS:
        print(f"\n## {name}", flush=True)
        command = [sys.executable, "-m", f"benchmarks.{name}", *(["--quick"] if args.quick else [])]
        status = subprocess.run(command).returncode or status
    return status


if __name__ == "__main__":
    sys.exit(main())
