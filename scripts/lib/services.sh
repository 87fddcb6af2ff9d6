#!/usr/bin/env bash
# Helpers shared by scripts/test, scripts/run, scripts/bench and scripts/reindex.
# Source this file; it defines functions only (and ROOT if the caller has not).
#
#   ensure_system_packages      apt-get install PostgreSQL, libpq, libcurl, pkg-config if missing
#   pg_bin_dir                  print the directory holding initdb/pg_ctl/postgres
#   ensure_osmem                project-local venv .venv with osmem-server (OpenSearch-compatible)
#   start_postgres DATADIR PORT private PostgreSQL cluster on 127.0.0.1:PORT, role+db "orders"
#                               (PG_SERVER_OPTIONS: more server settings, e.g. for profiling:
#                               "-c shared_preload_libraries=pg_stat_statements")
#   stop_postgres DATADIR       stop it (no error if it is not running)
#   start_osmem PORT LOGFILE    osmem-server on 127.0.0.1:PORT in the background (pid in OSMEM_PID)
#   stop_osmem                  stop the osmem-server this shell started, by its PID
#   wait_for_http URL SECONDS [PID]   wait until URL answers 2xx (fail early if PID dies)
#   stop_pid PID NAME [SECONDS] SIGTERM, wait, then SIGKILL
#   port_in_use PORT / require_free_port PORT WHAT
#   ensure_keys DIR             create DIR/auth-jwt-secret and DIR/signing-key once (mode 0600),
#                               export AUTH_JWT_SECRET and SIGNING_KEY from them
#   ensure_venv_package PKG==V  pip-install a pinned package into .venv if missing
#   ensure_browser              Debian's chromium and chromium-driver, selenium in .venv
#   start_stack NAME PG_PORT ES_PORT WRITE_PORT SEARCH_PORT INDEXER_PORT
#                               private PostgreSQL + osmem + migrate + the three services
#                               from the debug build (pids in STACK_PIDS); stop_stack stops them
set -euo pipefail

if [[ -z "${ROOT:-}" ]]; then
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fi

OSMEM_VERSION=0.1.6
OSMEM_PID=""

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' (not root and no sudo); install it by hand"
    fi
}

# ---------------------------------------------------------------------------
# System packages

_have_pg_server_tools() {
    local d
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        return 0
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/pg_ctl" && -x "$d/initdb" ]] && return 0
    done
    return 1
}

ensure_system_packages() {
    local missing=()
    _have_pg_server_tools || missing+=("pg_ctl/initdb")
    if command -v pkg-config >/dev/null 2>&1; then
        pkg-config --exists libpq || missing+=("libpq (pkg-config)")
        pkg-config --exists libcurl || missing+=("libcurl (pkg-config)")
    else
        missing+=("pkg-config")
    fi
    command -v curl >/dev/null 2>&1 || missing+=("curl")
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi
    log "missing: ${missing[*]}; installing system packages with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        postgresql libpq-dev libcurl4-openssl-dev pkg-config curl ca-certificates
    _have_pg_server_tools || die "PostgreSQL server tools still not found after apt-get install"
}

# ensure_bench_tools: wrk (the write benchmark's load generator) and taskset
# (the isolation benchmark pins processes to cores), from Debian.
ensure_bench_tools() {
    local missing=()
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# Directory holding initdb, pg_ctl and postgres: PATH first (symlinks resolved),
# then the highest /usr/lib/postgresql/*/bin.
pg_bin_dir() {
    local p d
    if p=$(command -v pg_ctl 2>/dev/null); then
        for d in "$(dirname "$(readlink -f "$p")")" "$(dirname "$p")"; do
            if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
                printf '%s\n' "$d"
                return 0
            fi
        done
    fi
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
        printf '%s\n' "$d"
        return 0
    fi
    echo "error: no PostgreSQL server binaries (initdb, pg_ctl) found; run ensure_system_packages" >&2
    return 1
}

_psql_bin() {
    local d
    d=$(pg_bin_dir 2>/dev/null || true)
    if [[ -n "$d" && -x "$d/psql" ]]; then
        printf '%s\n' "$d/psql"
    elif command -v psql >/dev/null 2>&1; then
        command -v psql
    else
        die "psql not found"
    fi
}

# ---------------------------------------------------------------------------
# osmem-server (in-memory OpenSearch-compatible server) in a project-local venv

# Random 48-byte keys, kept (0600) so tokens stay valid across restarts.
# An existing variable in the environment wins over the file.
ensure_keys() {
    local dir=$1 name var
    mkdir -p "$dir"
    for name in auth-jwt-secret signing-key; do
        if [[ ! -s "$dir/$name" ]]; then
            (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n=+/' >"$dir/$name")
        fi
        chmod 600 "$dir/$name"
    done
    [[ -n "${AUTH_JWT_SECRET:-}" ]] || AUTH_JWT_SECRET=$(cat "$dir/auth-jwt-secret")
    [[ -n "${SIGNING_KEY:-}" ]] || SIGNING_KEY=$(cat "$dir/signing-key")
    export AUTH_JWT_SECRET SIGNING_KEY
}

ensure_venv_package() {
    local spec=$1 name=${1%%==*}
    if ! "$ROOT/.venv/bin/python" -m pip show --disable-pip-version-check "$name" 2>/dev/null | grep -qx "Version: ${spec##*==}"; then
        log "installing $spec into .venv"
        "$ROOT/.venv/bin/python" -m pip install --disable-pip-version-check --quiet "$spec"
    fi
}

SELENIUM_VERSION=4.27.1

ensure_browser() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        log "installing chromium and chromium-driver (Debian)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
    fi
    ensure_venv_package "selenium==$SELENIUM_VERSION"
}

STACK_PIDS=()
STACK_PG_DATA=""

start_stack() {
    local name=$1 pg_port=$2 es_port=$3 write_port=$4 search_port=$5 indexer_port=$6 bin service
    STACK_PG_DATA="$ROOT/.local/$name-pg"
    bin=$(swift build --show-bin-path)
    stop_postgres "$STACK_PG_DATA"
    remove_postgres_data "$STACK_PG_DATA"
    start_postgres "$STACK_PG_DATA" "$pg_port"
    start_osmem "$es_port" "$ROOT/.local/$name-osmem.log"
    export DATABASE_URL="postgresql://orders@127.0.0.1:$pg_port/orders"
    export ELASTICSEARCH_URL="http://127.0.0.1:$es_port"
    export WRITE_API_ADDR=127.0.0.1:$write_port SEARCH_API_ADDR=127.0.0.1:$search_port INDEXER_METRICS_ADDR=127.0.0.1:$indexer_port
    "$bin/order-admin" migrate >/dev/null
    for service in order-indexer order-write-api order-search-api; do
        LOG_LEVEL=${STACK_LOG_LEVEL:-warning} "$bin/$service" </dev/null >"$ROOT/.local/$name-$service.log" 2>&1 &
        STACK_PIDS+=("$!")
    done
    wait_for_http "http://$WRITE_API_ADDR/health" 60 "${STACK_PIDS[1]}" || die "order-write-api did not start"
    wait_for_http "http://$SEARCH_API_ADDR/health" 60 "${STACK_PIDS[2]}" || die "order-search-api did not start"
    wait_for_http "http://$INDEXER_METRICS_ADDR/health" 60 "${STACK_PIDS[0]}" || die "order-indexer did not start"
}

stop_stack() {
    local pid
    for pid in "${STACK_PIDS[@]}"; do stop_pid "$pid" service 10 || true; done
    STACK_PIDS=()
    stop_osmem || true
    if [[ -n "$STACK_PG_DATA" ]]; then
        stop_postgres "$STACK_PG_DATA" || true
        remove_postgres_data "$STACK_PG_DATA" || true
    fi
}

ensure_osmem() {
    local venv="$ROOT/.venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        command -v python3 >/dev/null 2>&1 || die "python3 not found"
        log "creating Python venv in .venv"
        rm -rf "$venv"
        if ! python3 -m venv "$venv"; then
            # Debian's own python3 needs python3-venv for ensurepip.
            rm -rf "$venv"
            log "python3 -m venv failed; installing python3-venv"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
            python3 -m venv "$venv" || { rm -rf "$venv"; die "could not create $venv"; }
        fi
    fi
    if [[ ! -x "$venv/bin/osmem-server" ]]; then
        log "installing osmem-server==$OSMEM_VERSION into .venv"
        "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "osmem-server==$OSMEM_VERSION"
        # The wheel bundles a static binary inside the package but installs no
        # console script: link it as .venv/bin/osmem-server (relative link).
        local rel
        rel=$(env -u OSMEM_SERVER_BIN VENV="$venv" "$venv/bin/python" -c 'import os, osmem_server
print(os.path.relpath(osmem_server.resolve_binary(), os.path.join(os.environ["VENV"], "bin")))' 2>/dev/null) ||
            die "osmem-server is installed but its bundled binary was not found"
        ln -sfn "$rel" "$venv/bin/osmem-server"
        [[ -x "$venv/bin/osmem-server" ]] || die "osmem-server not found in .venv after pip install"
    fi
}

# ---------------------------------------------------------------------------
# Ports and HTTP

port_in_use() { (bash -c "</dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }

require_free_port() {
    local port=$1 what=$2
    if port_in_use "$port"; then
        die "port $port on 127.0.0.1 (for $what) is already in use; stop whatever listens there or choose another port"
    fi
}

_pid_alive() {
    local pid=$1 state
    [[ -n "$pid" ]] || return 1
    if [[ -r "/proc/$pid/stat" ]]; then
        # A finished child of this shell stays a zombie until it is waited for.
        state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
        [[ -n "$state" && "$state" != Z ]]
    else
        kill -0 "$pid" 2>/dev/null
    fi
}

# wait_for_http URL SECONDS [PID]: poll until URL answers with a 2xx status.
# With PID, give up as soon as that process has exited.
wait_for_http() {
    local url=$1 seconds=$2 pid=${3:-}
    local deadline=$((SECONDS + seconds))
    while true; do
        if curl -sf -o /dev/null --max-time 2 "$url"; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! _pid_alive "$pid"; then
            echo "error: process $pid exited while waiting for $url" >&2
            return 1
        fi
        if ((SECONDS >= deadline)); then
            echo "error: $url did not answer within ${seconds}s" >&2
            return 1
        fi
        sleep 0.3
    done
}

# stop_pid PID NAME [SECONDS]: SIGTERM, wait up to SECONDS (default 15), then SIGKILL.
stop_pid() {
    local pid=$1 name=$2 seconds=${3:-15} i
    [[ -n "$pid" ]] || return 0
    if _pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < seconds * 10; i++)); do
            _pid_alive "$pid" || break
            sleep 0.1
        done
        if _pid_alive "$pid"; then
            echo "warning: $name (pid $pid) did not stop after ${seconds}s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # Reap it if it is our child; ignore its exit status.
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# PostgreSQL

# initdb and the postgres server refuse to run as root: as root, run them as the
# "postgres" OS user (created by Debian's postgresql package).
_pg_run() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

_pg_status() {
    local bindir=$1 datadir=$2
    [[ -f "$datadir/PG_VERSION" ]] || return 1
    _pg_run "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1
}

# As root, the cluster belongs to the postgres OS user, which must be able to
# reach DATADIR. When a parent folder is closed to it (a checkout under /root,
# which is 0700), DATADIR becomes a symlink to a folder under /tmp instead.
# Prints the real data directory.
_pg_prepare_datadir() {
    local datadir=$1 target
    if [[ -L "$datadir" && ! -e "$datadir" ]]; then
        # Dangling link (its /tmp folder was cleaned): recreate the target.
        target=$(readlink "$datadir")
        mkdir -p "$target"
    fi
    mkdir -p "$datadir"
    datadir=$(readlink -f "$datadir")
    if is_root; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user (install the postgresql package)"
        chown postgres:postgres "$datadir"
        if ! runuser -u postgres -- test -w "$datadir"; then
            if [[ -n "$(ls -A "$datadir")" ]]; then
                die "the postgres OS user cannot reach $datadir (a parent folder is closed to it) and the folder is not empty"
            fi
            target=$(mktemp -d "${TMPDIR:-/tmp}/orders-pg.XXXXXX")
            chmod 0755 "$target"
            rmdir "$datadir"
            ln -s "$target" "$datadir"
            echo "note: the postgres OS user cannot reach $datadir; using $target (linked from it)" >&2
            datadir=$target
            chown postgres:postgres "$datadir"
        fi
    fi
    printf '%s\n' "$datadir"
}

# remove_postgres_data DATADIR: delete a (stopped) cluster, including the /tmp
# folder that DATADIR may link to.
remove_postgres_data() {
    local datadir=$1
    if [[ -L "$datadir" ]]; then
        rm -rf "$(readlink "$datadir")"
    fi
    rm -rf "$datadir"
}

# start_postgres DATADIR PORT
start_postgres() {
    local datadir=$1 port=$2
    local bindir sockdir psql initlog
    bindir=$(pg_bin_dir)
    initlog="$(dirname "$datadir")/$(basename "$datadir")-initdb.log"
    datadir=$(_pg_prepare_datadir "$datadir")

    # A server left running in this data directory by an earlier, killed run.
    if _pg_status "$bindir" "$datadir"; then
        log "stopping a PostgreSQL server left running in $datadir"
        stop_postgres "$datadir"
    fi
    require_free_port "$port" "PostgreSQL"

    if [[ ! -f "$datadir/PG_VERSION" ]]; then
        log "initdb $datadir"
        if ! _pg_run "$bindir/initdb" -D "$datadir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$initlog" 2>&1; then
            log "initdb with --locale=C.UTF-8 failed; retrying with --no-locale"
            find "$datadir" -mindepth 1 -delete
            _pg_run "$bindir/initdb" -D "$datadir" -U postgres --auth=trust -E UTF8 --no-locale >>"$initlog" 2>&1 ||
                die "initdb failed; see $initlog"
        fi
    fi

    sockdir="$datadir/socket"
    mkdir -p "$sockdir"
    if is_root; then chown postgres:postgres "$sockdir"; fi
    # Unix socket paths are limited to ~107 bytes; with a long checkout path use TCP only.
    if (( ${#sockdir} + 20 > 100 )); then
        sockdir=""
    fi

    log "starting PostgreSQL on 127.0.0.1:$port (data in $datadir)"
    # fsync/synchronous_commit/full_page_writes off: this cluster is for development
    # and tests only; a crash may lose recent commits, which is fine here.
    if ! _pg_run "$bindir/pg_ctl" -D "$datadir" -w -t 60 -l "$datadir/server.log" start \
        -o "-p $port -k '$sockdir' -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off ${PG_SERVER_OPTIONS:-}" >/dev/null; then
        tail -n 30 "$datadir/server.log" >&2 || true
        die "PostgreSQL did not start (log: $datadir/server.log)"
    fi

    psql=$(_psql_bin)
    local conn="host=127.0.0.1 port=$port user=postgres dbname=postgres"
    if [[ "$("$psql" "$conn" -XAtqc "SELECT 1 FROM pg_roles WHERE rolname = 'orders'")" != 1 ]]; then
        "$psql" "$conn" -Xq -v ON_ERROR_STOP=1 -c "CREATE ROLE orders LOGIN SUPERUSER" >/dev/null
    fi
    if [[ "$("$psql" "$conn" -XAtqc "SELECT 1 FROM pg_database WHERE datname = 'orders'")" != 1 ]]; then
        "$psql" "$conn" -Xq -v ON_ERROR_STOP=1 -c "CREATE DATABASE orders OWNER orders" >/dev/null
    fi
}

# restart_postgres DATADIR: fast shutdown and start again with the same options
# (pg_ctl keeps them in postmaster.opts); clients see their sessions dropped.
restart_postgres() {
    local datadir bindir
    datadir=$(readlink -f "$1")
    bindir=$(pg_bin_dir)
    _pg_run "$bindir/pg_ctl" -D "$datadir" -m fast -w -t 60 -l "$datadir/server.log" restart >/dev/null
}

# stop_postgres DATADIR: fast shutdown; succeeds when no server is running.
stop_postgres() {
    local datadir=$1 bindir
    [[ -f "$datadir/PG_VERSION" ]] || return 0
    datadir=$(readlink -f "$datadir")
    bindir=$(pg_bin_dir) || return 0
    if _pg_status "$bindir" "$datadir"; then
        log "stopping PostgreSQL ($datadir)"
        _pg_run "$bindir/pg_ctl" -D "$datadir" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            echo "warning: pg_ctl stop failed for $datadir" >&2
    fi
    return 0
}

# ---------------------------------------------------------------------------
# osmem-server

# start_osmem PORT LOGFILE: start in the background; its pid is in OSMEM_PID.
start_osmem() {
    local port=$1 logfile=$2
    local bin="$ROOT/.venv/bin/osmem-server"
    [[ -x "$bin" ]] || die "$bin missing; run ensure_osmem first"
    require_free_port "$port" "osmem-server"
    mkdir -p "$(dirname "$logfile")"
    log "starting osmem-server on 127.0.0.1:$port (log: $logfile)"
    # -parent-pid: it also exits by itself if this script dies without cleaning up.
    "$bin" -addr "127.0.0.1:$port" -no-stdin-watch -no-ja -parent-pid "$$" </dev/null >"$logfile" 2>&1 &
    OSMEM_PID=$!
    if ! wait_for_http "http://127.0.0.1:$port/" 30 "$OSMEM_PID"; then
        tail -n 30 "$logfile" >&2 || true
        stop_osmem
        die "osmem-server did not start on port $port (log: $logfile)"
    fi
}

# stop_osmem: stop the osmem-server started by start_osmem in this shell (by PID only).
stop_osmem() {
    if [[ -n "${OSMEM_PID:-}" ]]; then
        log "stopping osmem-server (pid $OSMEM_PID)"
        stop_pid "$OSMEM_PID" osmem-server 10
        OSMEM_PID=""
    fi
}
