#!/usr/bin/env bash
# Runs every test of the workspace against real PostgreSQL, RabbitMQ and the
# test identity providers (OIDC on Node.js, OAuth 1.0a on Python), starting or
# installing what is missing.
#
#   bash tests/run.sh [ARGS…]          services, then build the binaries, then
#                                      `cargo test --workspace ARGS…`
#   bash tests/run.sh --services-only  only make the services, Node and the
#                                      Python venv ready
#
# Works on a fresh Debian 12 machine with only the Rust toolchain: installs
# postgresql, rabbitmq-server, nodejs, npm, python3, python3-venv and
# chromium from apt when they are missing (as root, or through sudo when it
# is available). All traffic stays on 127.0.0.1.
#
# The tests find the services at (override by exporting them first):
#   SOCIALAUTH_TEST_DATABASE_URL  postgres://postgres:postgres@127.0.0.1:5432/postgres
#   SOCIALAUTH_TEST_AMQP_URL      amqp://guest:guest@127.0.0.1:5672/%2f
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_HOST=127.0.0.1
PG_PORT=5432
AMQP_HOST=127.0.0.1
AMQP_PORT=5672

log() { printf '==> %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root (or sudo) for: $*"
    return 1
  fi
}

# Runs a command as the postgres system user (peer authentication).
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd /tmp && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
  elif command -v sudo >/dev/null 2>&1; then
    (cd /tmp && sudo -u postgres "$@")
  else
    log "need root (or sudo) to run as postgres: $*"
    return 1
  fi
}

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# True when something accepts TCP connections on $1:$2 (bash's /dev/tcp).
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Polls $1:$2 until it accepts or $3 seconds have passed.
wait_port() {
  local host="$1" port="$2" seconds="$3" name="$4"
  local deadline=$((SECONDS + seconds))
  until port_open "$host" "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$name is not accepting connections on $host:$port after ${seconds}s"
      return 1
    fi
    sleep 1
  done
  log "$name is accepting connections on $host:$port"
}

# The newest PostgreSQL version with a cluster configured (Debian layout).
pg_version() {
  find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  if port_open "$PG_HOST" "$PG_PORT"; then
    log "PostgreSQL is accepting connections on $PG_HOST:$PG_PORT"
  else
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(pg_version)" ]; then
      apt_install postgresql
    fi
    local version
    version="$(pg_version)"
    if [ -z "$version" ]; then
      log "no PostgreSQL cluster under /etc/postgresql"
      return 1
    fi
    log "starting PostgreSQL $version (pg_ctlcluster $version main start)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start \
      || log "pg_ctlcluster start failed (already starting?); waiting for the port anyway"
    wait_port "$PG_HOST" "$PG_PORT" 60 PostgreSQL
  fi

  # The tests log in as postgres/postgres over TCP. Where the server trusts
  # 127.0.0.1 this works as is; on a stock Debian install it needs a password.
  local url="postgres://postgres:postgres@$PG_HOST:$PG_PORT/postgres"
  if command -v psql >/dev/null 2>&1; then
    if PGCONNECT_TIMEOUT=5 psql "$url" -tAqc 'select 1' >/dev/null 2>&1; then
      log "PostgreSQL login postgres@$PG_HOST works"
    else
      log "setting the password of the PostgreSQL user postgres for the tests"
      as_postgres psql -v ON_ERROR_STOP=1 -qc "ALTER USER postgres PASSWORD 'postgres'"
      psql "$url" -tAqc 'select 1' >/dev/null
      log "PostgreSQL login postgres@$PG_HOST works"
    fi
  fi
}

ensure_rabbitmq() {
  if port_open "$AMQP_HOST" "$AMQP_PORT"; then
    log "RabbitMQ is accepting connections on $AMQP_HOST:$AMQP_PORT"
    return
  fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
  fi
  # The package's own start (when there is an init system) may be under way.
  if ! port_open "$AMQP_HOST" "$AMQP_PORT"; then
    log "starting RabbitMQ (rabbitmq-server -detached)"
    as_root rabbitmq-server -detached \
      || log "rabbitmq-server -detached failed (already starting?); waiting for the port anyway"
  fi
  wait_port "$AMQP_HOST" "$AMQP_PORT" 180 RabbitMQ
}

ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  log "node $(node --version), npm $(npm --version 2>/dev/null)"
  local dir
  for dir in idp browser; do
    if [ ! -f "$ROOT/tests/$dir/node_modules/.package-lock.json" ]; then
      log "npm ci in tests/$dir"
      (cd "$ROOT/tests/$dir" && npm ci --no-audit --no-fund)
    else
      log "tests/$dir/node_modules is installed"
    fi
  done
}

# Debian's Chromium, which tests/tests/demo.rs drives headless through
# Playwright (tests/browser, playwright-core with the system browser).
ensure_chromium() {
  local chromium="${SOCIALAUTH_CHROMIUM:-/usr/bin/chromium}"
  if [ ! -x "$chromium" ]; then
    apt_install chromium
  fi
  log "$("$chromium" --version 2>/dev/null | head -n 1)"
}

# Python venvs, each at tests/<dir>/.venv with tests/<dir>/requirements.txt
# installed: the OAuth 1.0a test provider (tests/oauth1/server.py) and the
# OpenAPI validator and client generator (tests/openapi). The marker file
# holds the requirements' SHA-256, exactly as tests/src/oauth1_idp.rs
# writes and checks it, so the tests do not install again.
ensure_python() {
  local python="${SOCIALAUTH_TEST_PYTHON:-python3}"
  # Debian's python3 has the venv module without ensurepip (python3-venv).
  if ! "$python" -m venv --help >/dev/null 2>&1 \
    || ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
  log "$("$python" --version 2>&1)"
  local name
  for name in oauth1 openapi; do
    local dir="$ROOT/tests/$name"
    local venv="$dir/.venv"
    local marker="$venv/.socialauth-requirements.sha256"
    local want
    want="$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want" ]; then
      log "tests/$name/.venv is installed"
    else
      log "python3 -m venv tests/$name/.venv; pip install -r requirements.txt"
      "$python" -m venv --clear "$venv"
      "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
        -r "$dir/requirements.txt"
      printf '%s\n' "$want" >"$marker.partial"
      mv -f "$marker.partial" "$marker"
    fi
  done
}

# promtool (the alert-rule checks of tests/tests/first_hour.rs): on PATH, or
# taken out of Debian's prometheus package into tests/.tools without
# installing the package (no Prometheus server is started).
ensure_promtool() {
  local tools="$ROOT/tests/.tools"
  if command -v promtool >/dev/null 2>&1; then
    export SOCIALAUTH_PROMTOOL="${SOCIALAUTH_PROMTOOL:-$(command -v promtool)}"
  elif [ ! -x "$tools/promtool" ]; then
    if [ -z "$APT_UPDATED" ] && ! apt-cache show prometheus >/dev/null 2>&1; then
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update
      APT_UPDATED=1
    fi
    local work
    work="$(mktemp -d)"
    log "promtool: apt-get download prometheus (unpacked, not installed)"
    (cd "$work" && chmod 777 . && apt-get download prometheus >/dev/null)
    dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
    mkdir -p "$tools"
    cp "$work/x/usr/bin/promtool" "$tools/promtool"
    rm -rf "$work"
  fi
  export SOCIALAUTH_PROMTOOL="${SOCIALAUTH_PROMTOOL:-$tools/promtool}"
  log "$("$SOCIALAUTH_PROMTOOL" --version 2>&1 | head -n 1)"
}

ensure_services() {
  ensure_postgres
  ensure_rabbitmq
  ensure_node
  ensure_python
  ensure_promtool
  ensure_chromium
  export SOCIALAUTH_TEST_DATABASE_URL="${SOCIALAUTH_TEST_DATABASE_URL:-postgres://postgres:postgres@$PG_HOST:$PG_PORT/postgres}"
  export SOCIALAUTH_TEST_AMQP_URL="${SOCIALAUTH_TEST_AMQP_URL:-amqp://guest:guest@$AMQP_HOST:$AMQP_PORT/%2f}"
}

main() {
  cd "$ROOT"
  if [ "${1:-}" = "--services-only" ]; then
    ensure_services
    log "services ready"
    return
  fi
  ensure_services
  # The integration tests spawn target/debug/socialauth-api and
  # target/debug/socialauth-worker as separate processes: build them first.
  log "cargo build --workspace --bins"
  cargo build --workspace --bins
  log "cargo test --workspace $*"
  cargo test --workspace "$@"
}

main "$@"
