"""The test matrix: the suite on each supported Python, Django and database server.

    make test-matrix               # every entry below (nox from the project's .venv)
    .venv/bin/nox -l               # the entries
    .venv/bin/nox -s "tests(3.13-django6.0-postgresql)" -- -x    # one entry, pytest options

``make test`` is the first entry of the matrix (Python 3.11, Django 5.2, PostgreSQL) and is not
repeated here. An entry on PostgreSQL also leaves to ``make test`` what does not depend on the
Python or Django version (``ON_THE_FIRST_ENTRY_ONLY``): the browser tests drive the same
JavaScript against server code every entry tests over HTTP; the benchmarks' smoke runs check
that the benchmark scripts run (the capture they measure is the capture tests' in every entry);
the JavaScript unit tests run in node. The MariaDB entry runs the browser tests too (what the
server answers depends on the database). This keeps ``.ci/run`` within its time budget.

Each entry gets a fresh virtualenv under ``.nox/`` and its own throwaway servers
(``scripts/with_services.py``). Interpreters come from pyenv's versions directory, found
without pyenv on PATH; a missing one fails its entry, saying where it was looked for.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

import nox

nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"  # the matrix tests the interpreters this machine has
nox.options.reuse_venv = "no"

# (Python, Django, database server): the README's "Supported versions" lists exactly these.
MATRIX = [
    ("3.12", "6.0", "postgresql"),
    ("3.13", "6.0", "postgresql"),
    ("3.11", "5.2", "mariadb"),
]
EXTRAS = {"postgresql": "dev", "mariadb": "dev,mysql"}
ON_THE_FIRST_ENTRY_ONLY = [
    "-m",
    "not browser",
    "--deselect",
    "tests/test_benchmarks.py",
    "--deselect",
    "tests/test_js.py",
]


def pyenv_roots() -> list[Path]:
    """Where pyenv keeps interpreters: $PYENV_ROOT, ``pyenv root``, ~/.pyenv, /root/.pyenv."""
    roots = [os.environ.get("PYENV_ROOT")]
    if pyenv := shutil.which("pyenv"):
        answer = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        roots.append(answer.stdout.strip())
    roots += [str(Path.home() / ".pyenv"), "/root/.pyenv"]
    return list(dict.fromkeys(Path(root) for root in roots if root))


def interpreter(version: str) -> str:
    """The newest ``pythonX.Y`` in a pyenv versions directory, else on PATH (not a pyenv
    shim, which fails unless that version is selected); ``version`` itself when none exists,
    which nox then reports as missing."""
    for root in pyenv_roots():
        found = glob.glob(str(root / "versions" / f"{version}.*" / "bin" / f"python{version}"))
        if found:
            return max(found, key=lambda path: [int(part) for part in _patch_level(path)])
    path = os.pathsep.join(
        entry for entry in os.environ.get("PATH", "").split(os.pathsep) if "shims" not in entry
    )
    if on_path := shutil.which(f"python{version}", path=path):
        return on_path
    looked = ", ".join(f"{root}/versions/{version}.*" for root in pyenv_roots())
    print(f"noxfile: no Python {version} in {looked} or on PATH; its entry will fail")
    return version


def _patch_level(path: str) -> list[str]:
    return [part for part in Path(path).parts[-3].split(".") if part.isdigit()]


@nox.session(name="tests")
@nox.parametrize(
    ("python", "django", "database"),
    [
        nox.param(interpreter(python), django, database, id=f"{python}-django{django}-{database}")
        for python, django, database in MATRIX
    ],
)
def tests(session: nox.Session, django: str, database: str) -> None:
    """The whole suite beside throwaway servers (off PostgreSQL, tests marked ``postgresql``
    are deselected by tests/conftest.py)."""
    started = time.monotonic()
    services = ["python3", "scripts/with_services.py", "--database", database]
    if database == "mariadb":  # mysqlclient builds against Debian's libmariadb-dev
        session.run(*services, "--install-only", external=True)
    session.install("-e", f".[{EXTRAS[database]}]", f"Django~={django}.0")
    session.run(
        "python", "-c", "import django, sys; print('Django', django.get_version(), sys.version)"
    )
    python = str(Path(session.virtualenv.bin) / "python")
    selection = ON_THE_FIRST_ENTRY_ONLY if database == "postgresql" else []
    pytest = [python, "-m", "pytest", *selection, *session.posargs]
    session.run(*services, "--", *pytest, external=True)
    session.log(f"wall time of this entry: {time.monotonic() - started:.0f} s")
