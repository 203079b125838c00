#!/usr/bin/env python3
"""Run one command beside throwaway PostgreSQL, Redis and RabbitMQ servers: ``make test`` uses it.

    python3 scripts/with_services.py -- .venv/bin/python -m pytest
    python3 scripts/with_services.py --database mariadb -- .venv/bin/python -m pytest

With ``--mariadb`` a throwaway MariaDB server runs as well, named by ``MARIADB_URL``;
``--database mariadb`` makes it the one ``DATABASE_URL`` names (the MariaDB test matrix entry).
``--install-only`` installs the missing packages and exits (the Python MySQL driver builds
against Debian's ``libmariadb-dev``, so it is installed between the two).

Missing Debian packages (postgresql, redis-server, rabbitmq-server, chromium for the browser
tests, nodejs for the JS unit tests) are installed with apt-get when running as root. The
servers listen on free loopback ports, keep their data in one temporary directory and exist for
this run only; the command sees them as ``DATABASE_URL``, ``CELERY_BROKER_URL`` (Redis) and
``AMQP_BROKER_URL`` (RabbitMQ, which takes about 6 s to start: ``--without-rabbitmq`` skips it
for runs that do not need it). moto's S3-compatible server (``moto_server``, from the dev extra,
found beside the command's Python) runs as ``S3_ENDPOINT_URL``.
Whatever happens (failure, Ctrl-C, SIGTERM) the servers are stopped and the directory removed,
and the exit status is the command's.

Without root and without the packages the command runs without those variables: integration
tests then skip, or fail when ``CI=true``. Only the standard library is used, so this runs
before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

IS_ROOT = os.geteuid() == 0
STARTUP_ATTEMPTS = 3
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def say(message: str) -> None:
    print(f"[with_services] {message}", file=sys.stderr, flush=True)


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory."""
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not candidates:
        return None
    return Path(max(candidates, key=lambda path: int(Path(path).parts[4]))).parent


def missing_packages(mariadb: bool = False) -> list[str]:
    wanted = {
        "postgresql": postgres_bindir() is not None,
        "redis-server": shutil.which("redis-server") is not None,
        "rabbitmq-server": RABBITMQ_SERVER.exists(),
        "chromium": shutil.which("chromium") is not None,
        "nodejs": shutil.which("node") is not None,  # tests/test_js.py: the JS unit tests
    }
    if mariadb:
        wanted.update(mariadb_packages())
    return [package for package, present in wanted.items() if not present]


def mariadb_packages() -> dict[str, bool]:
    """MariaDB's server, and what ``mysqlclient`` builds against: package -> installed."""
    return {
        "mariadb-server": shutil.which("mariadbd", path=f"{os.environ.get('PATH')}:/usr/sbin")
        is not None,
        "libmariadb-dev": Path("/usr/include/mariadb/mysql.h").exists(),
        "pkg-config": shutil.which("pkg-config") is not None,
    }


def install_packages(packages: list[str]) -> None:
    if not packages:
        return
    if not IS_ROOT:
        say(f"not root: cannot install {', '.join(packages)}; tests needing them will skip")
        return
    say(f"installing {', '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", *packages],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, what: str, server: subprocess.Popen | None = None) -> None:
    """Until ``port`` accepts connections; a ``server`` that exits meanwhile fails at once."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"{what} exited with status {server.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not accept connections on port {port}")


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if IS_ROOT else command


def run_quietly(command: list[str]) -> None:
    result = subprocess.run(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout.decode(errors='replace')}")


@contextlib.contextmanager
def postgres_server(workdir: Path, durable: bool = False) -> Iterator[str]:
    """A PostgreSQL cluster with trust authentication; yields its database URL.

    Not ``durable``, it skips fsync (fast for tests); durable, it commits as a production
    server does (for benchmarks, whose baselines include a commit per row).
    """
    bindir = postgres_bindir()
    datadir = workdir / "postgres"
    datadir.mkdir()
    if IS_ROOT:
        shutil.chown(datadir, "postgres", "postgres")
    run_quietly(
        as_postgres(
            [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust", "-N"]
        )
    )
    port = on_a_free_port("PostgreSQL", lambda port: start_postgres(bindir, datadir, port, durable))
    try:
        createdb = [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
        run_quietly([*createdb, "-U", "postgres", "tasklog"])
        yield f"postgres://postgres@127.0.0.1:{port}/tasklog"
    finally:
        subprocess.run(
            as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )


def start_postgres(bindir: Path, datadir: Path, port: int, durable: bool) -> None:
    options = f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    command = [str(bindir / "pg_ctl"), "-D", str(datadir), "-o", options]
    run_quietly(as_postgres([*command, "-l", str(datadir / "server.log"), "-w", "start"]))


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A Redis server without persistence; yields its broker URL."""
    pidfile = workdir / "redis.pid"
    port = on_a_free_port("Redis", lambda port: start_redis(workdir, pidfile, port))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_pidfile(pidfile)


def start_redis(workdir: Path, pidfile: Path, port: int) -> None:
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--daemonize", "yes", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(workdir), "--pidfile", str(pidfile)]
    run_quietly([*command, "--logfile", str(workdir / "redis.log")])
    try:
        wait_for_port(port, "Redis")
    except RuntimeError:
        stop_pidfile(pidfile)
        raise


def moto_server_command(command: list[str]) -> Path | None:
    """moto's S3-compatible server: beside the command's Python (its virtualenv), else on PATH."""
    beside = Path(command[0]).parent / "moto_server" if command else None
    if beside is not None and beside.exists():
        return beside
    found = shutil.which("moto_server")
    return Path(found) if found else None


@contextlib.contextmanager
def moto_server(executable: Path) -> Iterator[str]:
    """moto in server mode, an S3-compatible HTTP server kept in memory; yields its URL."""
    server: dict[str, subprocess.Popen] = {}

    def start(port: int) -> None:
        process = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, "moto", process)
        except RuntimeError:
            stop_process(process, STOP_TIMEOUT)
            raise
        server["process"] = process

    port = on_a_free_port("moto", start)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(server["process"], STOP_TIMEOUT)


@contextlib.contextmanager
def rabbitmq_server(workdir: Path) -> Iterator[str]:
    """A RabbitMQ node of its own (data, logs, Erlang cookie and port mapper in ``workdir``,
    every port a free loopback one); yields its AMQP URL."""
    home = workdir / "rabbitmq"
    home.mkdir()
    node: dict[str, subprocess.Popen] = {}
    started = time.monotonic()
    port = on_a_free_port("RabbitMQ", lambda port: start_rabbitmq(home, port, node))
    say(f"RabbitMQ accepted connections after {time.monotonic() - started:.1f} s")
    try:
        yield f"amqp://guest:guest@127.0.0.1:{port}//"
    finally:
        stop_rabbitmq(node["server"], node["env"])


def rabbitmq_env(home: Path, port: int) -> dict[str, str]:
    """The environment that keeps a RabbitMQ node away from the system's one: nothing is read
    from /etc/rabbitmq or /var/lib/rabbitmq, and its Erlang port mapper is its own."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith("RABBITMQ_")}
    return {
        **kept,
        "HOME": str(home),  # the Erlang cookie
        "RABBITMQ_NODENAME": f"tasklog-{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "ERL_EPMD_PORT": str(free_port()),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
    }


def start_rabbitmq(home: Path, port: int, node: dict) -> None:
    env = rabbitmq_env(home, port)
    with (home / "server.log").open("ab") as log:
        server = subprocess.Popen(
            [str(RABBITMQ_SERVER)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, "RabbitMQ", server)
    except RuntimeError as error:
        stop_rabbitmq(server, env)
        log = (home / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{error}; its output ends with:\n{log}") from None
    node.update(server=server, env=env)


def stop_rabbitmq(server: subprocess.Popen, env: dict[str, str]) -> None:
    """SIGTERM the node (it stops cleanly), SIGKILL it after a while; then its port mapper."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    epmd = shutil.which("epmd")
    if epmd:
        subprocess.run(
            [epmd, "-kill"], env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False
        )


def on_a_free_port(what: str, start: Callable[[int], None]) -> int:
    """Call ``start(port)`` on free ports until it works: a port may be taken meanwhile."""
    for _attempt in range(STARTUP_ATTEMPTS - 1):
        port = free_port()
        try:
            start(port)
            return port
        except RuntimeError as error:
            say(f"{what} did not start on port {port}, retrying: {error}")
    port = free_port()
    start(port)
    return port


@contextlib.contextmanager
def mariadb_server(workdir: Path, durable: bool = False) -> Iterator[str]:
    """A MariaDB server (utf8mb4, root without password on loopback); yields its database URL.

    Not ``durable``, InnoDB writes its log without flushing each commit (fast for tests).
    """
    datadir = workdir / "mariadb"
    user = ["--user=mysql"] if IS_ROOT else []
    install = ["mariadb-install-db", *user, f"--datadir={datadir}", "--skip-test-db"]
    run_quietly([*install, "--auth-root-authentication-method=normal"])
    servers: list[subprocess.Popen] = []
    port = on_a_free_port(
        "MariaDB", lambda port: servers.append(start_mariadb(datadir, port, user, durable))
    )
    try:
        client = ["mariadb", "--protocol=tcp", "-h", "127.0.0.1", "-P", str(port), "-u", "root"]
        run_quietly([*client, "-e", "CREATE DATABASE tasklog CHARACTER SET utf8mb4"])
        yield f"mysql://root@127.0.0.1:{port}/tasklog"
    finally:
        stop_process(servers[-1], timeout=30.0)


def start_mariadb(datadir: Path, port: int, user: list[str], durable: bool) -> subprocess.Popen:
    command = ["/usr/sbin/mariadbd", "--no-defaults", *user, f"--datadir={datadir}"]
    command += [f"--socket={datadir}/mariadbd.sock", f"--port={port}"]
    command += ["--bind-address=127.0.0.1", "--skip-name-resolve", "--skip-log-bin"]
    command += ["--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"]
    command += ["--max-connections=500", f"--log-error={datadir}/server.log"]
    if not durable:
        command += ["--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0"]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, "MariaDB")
    except RuntimeError as error:
        stop_process(process, timeout=0)
        log = datadir / "server.log"
        raise RuntimeError(
            log.read_text(errors="replace")[-2000:] if log.exists() else ""
        ) from error
    return process


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM a server we started, SIGKILL it if it is still there after ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_pidfile(pidfile: Path, timeout: float = 10.0) -> None:
    """SIGTERM the process named in ``pidfile``, SIGKILL it if it is still there after timeout."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        pid = int(pidfile.read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)


def run(command: list[str], env: dict[str, str]) -> int:
    process = subprocess.Popen(command, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="*", help="the command to run, after --")
    parser.add_argument(
        "--durable", action="store_true", help="databases with fsync on, as in production"
    )
    parser.add_argument(
        "--mariadb", action="store_true", help="a MariaDB server as well, as MARIADB_URL"
    )
    parser.add_argument(
        "--database",
        choices=("postgresql", "mariadb"),
        default="postgresql",
        help="the server DATABASE_URL names (mariadb implies --mariadb)",
    )
    parser.add_argument(
        "--install-only", action="store_true", help="install missing packages, start nothing"
    )
    parser.add_argument(
        "--without-rabbitmq",
        action="store_true",
        help="do not start RabbitMQ (about 6 s), for runs that use only Redis",
    )
    args = parser.parse_args(argv)
    args.mariadb = args.mariadb or args.database == "mariadb"
    # SIGTERM unwinds like Ctrl-C does, so the servers are stopped either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    if not args.command and not args.install_only:
        parser.error("a command to run is required (after --)")
    install_packages(missing_packages(args.mariadb))
    if args.install_only:
        return 0
    env = dict(os.environ)
    workdir = Path(tempfile.mkdtemp(prefix="tasklog-services-"))
    workdir.chmod(0o755)  # the postgres user must reach its data directory
    try:
        with contextlib.ExitStack() as services:
            if postgres_bindir() is not None:
                env["DATABASE_URL"] = services.enter_context(postgres_server(workdir, args.durable))
            if args.mariadb:
                env["MARIADB_URL"] = services.enter_context(mariadb_server(workdir, args.durable))
                if args.database == "mariadb":
                    env["DATABASE_URL"] = env["MARIADB_URL"]
            if shutil.which("redis-server"):
                env["CELERY_BROKER_URL"] = services.enter_context(redis_server(workdir))
            if RABBITMQ_SERVER.exists() and not args.without_rabbitmq:
                env["AMQP_BROKER_URL"] = services.enter_context(rabbitmq_server(workdir))
            if moto := moto_server_command(args.command):
                env["S3_ENDPOINT_URL"] = services.enter_context(moto_server(moto))
            for name in ("DATABASE_URL", "CELERY_BROKER_URL", "AMQP_BROKER_URL", "S3_ENDPOINT_URL"):
                say(f"{name}={env.get(name, '(unset)')}")
            return run(args.command, env)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
