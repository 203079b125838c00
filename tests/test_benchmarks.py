"""Each benchmark runs in quick mode against the test services and ends with its JSON line.

Nothing here is timed: the figures belong in docs/performance.md, not in a pass or a fail.
The concurrency benchmark exits non-zero when a line was lost, which fails its run here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.__main__ import BENCHMARKS, POSTGRESQL_ONLY
from tests.harness import ROOT


@pytest.mark.integration
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.postgresql] if name in POSTGRESQL_ONLY else [])
        for name in BENCHMARKS
    ],
)
def test_benchmark_runs_in_quick_mode_and_prints_its_figures(name):
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    figures = json.loads(result.stdout.splitlines()[-1])
    assert (figures["benchmark"], figures["size"]) == (name, "quick")
