"""Run the benchmarks one after the other: ``python -m benchmarks [--quick] [name ...]``.

Each runs in a process of its own: Django's settings (its database) are fixed per process.
``ingest`` runs once per database it measures: SQLite (a new file), and MariaDB when
``MARIADB_URL`` is set (``make bench`` starts one); the others run on ``DATABASE_URL``'s
PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

BENCHMARKS = (
    "throughput",
    "print_cost",
    "flush_cost",
    "latency",
    "biglogs",
    "search",
    "browser",
    "concurrency",
    "ingest",
    "publish",
    "scale_archive",
    "scale_viewers",
    "scale_partitions",
)
# ``make bench BENCH=scale`` runs the benchmarks of issue 15's scale work.
GROUPS = {"scale": tuple(name for name in BENCHMARKS if name.startswith("scale_"))}
# The one benchmark that runs on every database; COPY, generate_series and PostgreSQL's own
# database creation tie the others to PostgreSQL.
ANY_DATABASE = frozenset(("ingest",))


def database_urls(name: str) -> list[str | None]:
    """The ``DATABASE_URL`` of each run of benchmark ``name`` (None: the one set)."""
    if name not in ANY_DATABASE:
        return [None]
    return ["sqlite://", *filter(None, [os.environ.get("MARIADB_URL")])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "names", nargs="*", help=f"some of {', '.join((*BENCHMARKS, *GROUPS))} (default all)"
    )
    args = parser.parse_args(argv)
    if unknown := set(args.names) - set(BENCHMARKS) - set(GROUPS):
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    status = 0
    chosen = [member for name in args.names for member in GROUPS.get(name, (name,))]
    for name in chosen or BENCHMARKS:
        for url in database_urls(name):
            print(f"\n## {name}" + (f" ({url.split(':')[0]})" if url else ""), flush=True)
            command = [sys.executable, "-m", f"benchmarks.{name}"]
            env = {**os.environ, "DATABASE_URL": url} if url else None
            command += ["--quick"] if args.quick else []
            status = subprocess.run(command, env=env).returncode or status
    return status


if __name__ == "__main__":
    sys.exit(main())
