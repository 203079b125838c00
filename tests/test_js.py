"""The JavaScript unit tests (tests/js/, node's built-in runner) as pytest tests, so that
``make test`` and every nox entry run them. node must be there: a missing node fails, never
skips (``scripts/with_services.py`` installs Debian's ``nodejs`` when it is missing)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess

import pytest

from tests.harness import ROOT


@pytest.mark.abuse  # tests/js/ holds the renderer's hostile cases too
def test_javascript_unit_tests_pass():
    node = shutil.which("node")
    assert node, "node is missing: install Debian's nodejs (scripts/with_services.py does as root)"
    result = subprocess.run(
        [node, "--test", "tests/js/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, report
    written = sum(
        len(re.findall(r"^test\(", path.read_text(), re.MULTILINE))
        for path in (ROOT / "tests" / "js").glob("*.test.js")
    )
    ran = re.search(r"^# tests (\d+)$", result.stdout, re.MULTILINE)
    assert written and ran and int(ran.group(1)) == written, report  # every test ran
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), report


def test_with_services_installs_node_when_it_is_missing(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "with_services_node", ROOT / "scripts" / "with_services.py"
    )
    with_services = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(with_services)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "nodejs" in with_services.missing_packages()
    (tmp_path / "node").write_text("#!/bin/sh\n")
    (tmp_path / "node").chmod(0o755)
    assert "nodejs" not in with_services.missing_packages()
