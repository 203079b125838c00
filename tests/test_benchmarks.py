"""Each benchmark runs in quick mode against the test services and ends with its JSON line.

Nothing here is timed: the figures belong in docs/performance.md, not in a pass or a fail.
The concurrency benchmark exits non-zero when a line was lost, which fails its run here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.__main__ import ANY_DATABASE, BENCHMARKS
from tests.harness import ROOT


@pytest.mark.integration
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.postgresql)
        for name in BENCHMARKS
        if name not in ANY_DATABASE
    ],
)
def test_benchmark_runs_in_quick_mode_and_prints_its_figures(name):
    figures = run_quick(name)

    assert (figures["benchmark"], figures["size"]) == (name, "quick")


@pytest.mark.integration
def test_ingest_runs_on_sqlite_and_on_the_test_database_unless_postgresql():
    from django.conf import settings
    from django.db import connection

    databases = {"sqlite": "sqlite://"}
    if connection.vendor == "mysql":
        params = settings.DATABASES["default"]
        databases["mysql"] = f"mysql://{params['USER']}@{params['HOST']}:{params['PORT']}/x"
    for vendor, url in databases.items():
        figures = run_quick("ingest", DATABASE_URL=url)

        assert (figures["benchmark"], figures["database"]) == ("ingest", vendor)
        assert figures["lines_per_s"]["raw executemany, one transaction"] > 0


def run_quick(name: str, **env: str) -> dict:
    """The figures (last line) of ``python -m benchmarks.<name> --quick``, which must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1])
