"""The tools of the test matrix: noxfile.py finding interpreters without pyenv on PATH, and the
options of scripts/with_services.py."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys

import pytest

from tests.harness import ROOT


@functools.cache
def load(name: str, path: str):
    """The module at ``path``, imported once (nox registers the sessions of a noxfile)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def noxfile(monkeypatch, tmp_path):
    """noxfile.py with only a fake pyenv root to look in (nothing on PATH)."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    module = load("noxfile", "noxfile.py")
    monkeypatch.setattr(module, "pyenv_roots", lambda: [tmp_path / "pyenv"])
    return module


def fake_python(root, version: str, minor: str) -> str:
    binary = root / "pyenv" / "versions" / version / "bin" / f"python{minor}"
    binary.parent.mkdir(parents=True)
    binary.touch(mode=0o755)
    return str(binary)


def test_the_newest_patch_release_is_chosen_by_number_not_by_text(noxfile, tmp_path):
    fake_python(tmp_path, "3.12.9", "3.12")
    newest = fake_python(tmp_path, "3.12.10", "3.12")
    fake_python(tmp_path, "3.13.0", "3.13")

    assert noxfile.interpreter("3.12") == newest


@pytest.mark.abuse
def test_a_missing_interpreter_is_named_with_where_it_was_looked_for(noxfile, tmp_path, capsys):
    fake_python(tmp_path, "3.12.1", "3.12")

    assert noxfile.interpreter("3.13") == "3.13"  # nox then fails the entry: not found
    assert f"no Python 3.13 in {tmp_path}/pyenv/versions/3.13.*" in capsys.readouterr().out


@pytest.mark.abuse
def test_odd_version_directories_are_ignored(noxfile, tmp_path):
    fake_python(tmp_path, "3.12.1", "3.12")
    for odd in ["3.12-dev", "3.12.x", "3.12.1rc1 ü 🐍", "3.12.1; rm -rf"]:
        fake_python(tmp_path, odd, "3.12")

    assert noxfile.interpreter("3.12").endswith("/3.12.1/bin/python3.12")


def test_the_matrix_is_the_readmes_table():
    readme = (ROOT / "README.md").read_text()
    matrix = load("noxfile", "noxfile.py").MATRIX
    names = {"postgresql": "PostgreSQL 15", "mariadb": "MariaDB 10.11"}
    for python, django, database in matrix:
        assert f"| {python} | {django}" in readme and names[database] in readme


@pytest.mark.abuse
@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--database", "oracle", "--", "true"], "invalid choice: 'oracle'"),
        (["--database", "mariadb' OR 1=1", "--", "true"], "invalid choice"),
        (["--mariadb"], "a command to run is required"),
        ([], "a command to run is required"),
    ],
)
def test_with_services_refuses_bad_options_before_installing_or_starting_anything(arguments, error):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "with_services.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert error in result.stderr
    assert "[with_services]" not in result.stderr  # nothing installed, nothing started
