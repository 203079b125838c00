#!/usr/bin/env bash
# The example project in the background: `scripts/demo.sh start` (make demo), `... stop` (make stop).
#
# start: migrates, makes the demo superuser, (re)starts a Celery worker and uvicorn with pid files
# and logs under var/, launches timed_print_task and follows its log until the task ends.
# Needs no server: SQLite and kombu's filesystem broker (see example/settings.py). DEBUG is on for
# the demo (DJANGO_DEBUG=true unless set), off by default everywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PYTHON=$VENV/bin/python
VAR=var
PREFERRED_PORT=8000

stop_pidfile() {  # stop_pidfile NAME: SIGTERM the process group, SIGKILL it after 15 s
    local pidfile=$VAR/$1.pid pid
    [[ -f $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        echo "Stopped $1 (pid $pid)."
    fi
    rm -f "$pidfile"
}

start_in_background() {  # start_in_background NAME COMMAND...: own session, pid file, log file
    local name=$1
    shift
    setsid "$@" >"$VAR/$name.log" 2>&1 </dev/null &
    echo $! >"$VAR/$name.pid"
}

free_port() {  # the preferred port if nothing listens there, else any free one
    "$PYTHON" - "$PREFERRED_PORT" <<'EOF'
import socket
import sys

with socket.socket() as sock:
    try:
        sock.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1])
EOF
}

wait_for_web() {  # wait_for_web PORT: until uvicorn answers, or fail with its log
    for _ in $(seq 100); do
        if "$PYTHON" -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1" 2>/dev/null; then
            return 0
        fi
        kill -0 "$(<"$VAR/web.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "The web server did not start; its log ($VAR/web.log):" >&2
    cat "$VAR/web.log" >&2
    return 1
}

start() {
    # Django's debug page for the demo only: example/settings.py keeps DEBUG off by default.
    export DJANGO_DEBUG=${DJANGO_DEBUG:-true}
    mkdir -p "$VAR"
    stop_pidfile web
    stop_pidfile worker
    "$PYTHON" manage.py migrate --no-input -v 0
    "$PYTHON" manage.py ensure_demo_superuser

    # Four threads in one process: SQLite copes thanks to the OPTIONS in example/settings.py.
    start_in_background worker "$VENV/bin/celery" -A example worker -P threads -c 4 -l INFO
    local port
    port=$(free_port)
    start_in_background web "$VENV/bin/uvicorn" example.asgi:application \
        --host 127.0.0.1 --port "$port"
    wait_for_web "$port"
    echo "Web server: http://127.0.0.1:$port/ (log $VAR/web.log); worker log $VAR/worker.log"

    local task_id
    task_id=$("$PYTHON" manage.py launch_demo_task --count 10 --interval 1)
    echo "Launched timed_print_task $task_id"
    echo "Watch it in the browser: http://127.0.0.1:$port/tasklog/$task_id/"
    if "$PYTHON" manage.py help tasklog_follow >/dev/null 2>&1; then
        "$PYTHON" manage.py tasklog_follow "$task_id" || echo "The task did not succeed."
    else
        echo "manage.py tasklog_follow is not in this checkout yet: the log cannot be followed" \
            "here; the task runs anyway (see $VAR/worker.log)."
    fi
    echo "The worker and the web server keep running; stop them with: make stop"
}

case "${1:-}" in
    start) start ;;
    stop)
        stop_pidfile web
        stop_pidfile worker
        ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
