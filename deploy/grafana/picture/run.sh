#!/usr/bin/env bash
# Draws docs/images/dashboard.png: the Grafana dashboard
# (deploy/grafana/dashboards/socialauth.json) with the data of a real run.
#
#   bash deploy/grafana/picture/run.sh [--no-build] [--keep-tmp] [--out FILE]
#
# 1. Builds the debug binaries (socialauth-api, socialauth-worker and the
#    tests crate's stubidp, loadgen, seedlinks) and takes Prometheus's server
#    out of Debian's `prometheus` package into tests/.tools (unpacked, not
#    installed), unless `prometheus` is on PATH.
# 2. Starts the production stack on 127.0.0.1: a fresh PostgreSQL database,
#    uniquely prefixed RabbitMQ queues, socialauth-api and two
#    socialauth-worker processes (each serving /metrics on its own port),
#    against two stub OAuth 2 providers (`stub-a`, `stub-b`: two stubidp
#    processes). Their client secrets are JWTs with an `exp` 150 and 10 days
#    ahead, so the secrets panel has something to show.
# 3. Starts Prometheus on a generated configuration: the api and both
#    workers scraped every 2 s, the alert rules of deploy/prometheus/alerts.yml
#    loaded, storage in the temp dir.
# 4. Drives about 4.5 minutes of traffic (the timeline is in `traffic` below):
#    djoser-flow logins with stub-a and /social-auth logins with stub-b at a
#    few per second, new and returning users; refused codes; a re-encryption
#    of 1,500 links seeded under an older key; a refresh campaign; stub-a
#    stopped for 25 s; a burst of stub-b signups past its request budget.
# 5. Runs render.py (in the venv deploy/grafana/picture/.venv, made from
#    requirements.txt) over the run's time window and writes the PNG.
#
# About 5.5 minutes once the binaries are built (--no-build skips cargo).
#
# Everything it starts is stopped on exit (also on failure or Ctrl-C); the
# database is dropped and the queues and exchange of its prefix are deleted.
# Needs PostgreSQL on 127.0.0.1:5432 and RabbitMQ on 127.0.0.1:5672
# (`bash tests/run.sh --services-only` starts them when they are not
# running), curl, jq, psql, rabbitmqctl and python3 with venv.
#
# Environment:
#   SOCIALAUTH_TEST_DATABASE_URL [postgres://postgres:postgres@127.0.0.1:5432/postgres]
#   SOCIALAUTH_TEST_AMQP_URL     [amqp://guest:guest@127.0.0.1:5672/%2f]
#   PICTURE_PYTHON               [python3] the interpreter the venv is made from
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/deploy/grafana/picture"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
ADMIN_URL="${SOCIALAUTH_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
AMQP_URL="${SOCIALAUTH_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
PYTHON="${PICTURE_PYTHON:-python3}"
OUT="$ROOT/docs/images/dashboard.png"
BUILD=1
KEEP_TMP=0

# Traffic timeline, seconds from its start.
TRAFFIC_SECS=270
REENCRYPT_AT=30
CAMPAIGN_AT=55
OUTAGE_AT=115
OUTAGE_SECS=25
BURST_AT=195
# Links seeded under the older key k0 before the start.
SEEDED_LINKS=1500

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 1
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --keep-tmp) KEEP_TMP=1 ;;
    --out)
      [ "$#" -ge 2 ] || die "--out needs a value"
      OUT="$2"
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    *) die "unknown argument $1 (--help lists them)" ;;
  esac
  shift
done
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac

# The config files are the whole configuration: no SOCIALAUTH__SECTION__KEY
# of the caller's shell, no log filter, no backtrace capture.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE RUST_LOG SOCIALAUTH_CONFIG
while read -r var; do unset "$var"; done < <(compgen -e | grep '^SOCIALAUTH__' || true)

# ---- processes and cleanup ---------------------------------------------------
TMP=""
STARTED=() # pids of the processes this script started and still runs
DB_NAME=""
QUEUE_PREFIX=""

# alive, stop_pids, forget_pids, free_port.
# shellcheck source=../../../tests/lib/processes.sh
source "$ROOT/tests/lib/processes.sh"

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "${#STARTED[@]}" -gt 0 ]; then
    log "stopping ${STARTED[*]}"
    stop_pids "${STARTED[@]}"
  fi
  if [ -n "$QUEUE_PREFIX" ]; then
    local q
    for q in login refresh campaign dead; do
      rabbitmqctl -q delete_queue "${QUEUE_PREFIX}$q" >/dev/null 2>&1 || true
    done
    rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"${QUEUE_PREFIX}socialauth\">>), false, <<\"socialauth-picture\">>)." >/dev/null 2>&1 \
      || log "could not delete exchange ${QUEUE_PREFIX}socialauth (durable; harmless, delete it by hand)"
  fi
  if [ -n "$DB_NAME" ]; then
    psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 \
      || log "could not drop database $DB_NAME"
  fi
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "$rc" != 0 ]; then
      local f
      for f in "$TMP"/*.log; do
        [ -f "$f" ] || continue
        log "last lines of ${f##*/}:"
        tail -n 8 "$f" >&2
      done
    fi
    if [ "$KEEP_TMP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts "$@" in the background in $TMP with output to $1; sets PID.
PID=""
start_bg() {
  local logfile="$1"
  shift
  (cd "$TMP" && exec "$@" </dev/null >"$logfile" 2>&1) &
  PID=$!
  STARTED+=("$PID")
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# A sleep that a signal to this script interrupts at once (bash runs a trap
# only after the foreground command it waits for).
pause() {
  sleep "$1" &
  wait $! || true
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) for: $*"
  fi
}

# Polls URL $1 until it answers 2xx, for at most $2 s while pid $3 lives.
wait_http() {
  local url="$1" seconds="$2" pid="$3" logfile="$4" deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    alive "$pid" || {
      tail -n 30 "$logfile" >&2
      die "$url: its process exited"
    }
    [ "$SECONDS" -lt "$deadline" ] || die "$url did not answer within ${seconds}s"
    sleep 0.2
  done
}

# ---- 1. binaries, Prometheus, Python -------------------------------------------
cd "$ROOT"
for tool in curl jq psql rabbitmqctl "$PYTHON"; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done
if ! port_open 127.0.0.1 5432 || ! port_open 127.0.0.1 5672; then
  log "PostgreSQL or RabbitMQ is not running: bash tests/run.sh --services-only"
  bash "$ROOT/tests/run.sh" --services-only
fi
if [ "$BUILD" = 1 ]; then
  log "cargo build -p socialauth-api -p socialauth-worker -p socialauth-tests --bins"
  cargo build -p socialauth-api -p socialauth-worker -p socialauth-tests --bins
fi
for b in socialauth-api socialauth-worker stubidp loadgen seedlinks; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing (cargo build -p socialauth-api -p socialauth-worker -p socialauth-tests --bins)"
done

# Prometheus's server: on PATH, or taken out of Debian's prometheus package
# into tests/.tools without installing the package (as tests/run.sh does for
# promtool).
ensure_prometheus() {
  local tools="$ROOT/tests/.tools"
  if command -v prometheus >/dev/null 2>&1; then
    PROMETHEUS="$(command -v prometheus)"
  else
    if [ ! -x "$tools/prometheus" ]; then
      if ! apt-cache show prometheus >/dev/null 2>&1; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
      fi
      local work
      work="$(mktemp -d)"
      log "prometheus: apt-get download prometheus (unpacked, not installed)"
      (cd "$work" && chmod 777 . && apt-get download prometheus >/dev/null)
      dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
      mkdir -p "$tools"
      cp "$work/x/usr/bin/prometheus" "$tools/prometheus"
      rm -rf "$work"
    fi
    PROMETHEUS="$tools/prometheus"
  fi
  log "$("$PROMETHEUS" --version 2>&1 | head -n 1)"
}
ensure_prometheus

# The renderer's venv, made again when requirements.txt changes.
VENV="$HERE/.venv"
ensure_venv() {
  local marker="$VENV/.requirements.sha256" want
  want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want" ]; then
    log "deploy/grafana/picture/.venv is installed"
    return
  fi
  # Debian's python3 has the venv module without ensurepip (python3-venv).
  if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "apt-get install python3-venv"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null
  fi
  log "$PYTHON -m venv deploy/grafana/picture/.venv; pip install -r requirements.txt"
  "$PYTHON" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    -r "$HERE/requirements.txt"
  printf '%s\n' "$want" >"$marker"
}
ensure_venv

TMP="$(mktemp -d /tmp/socialauth-picture.XXXXXX)"
SUFFIX="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# This run's binaries, hard-linked (or copied): a concurrent cargo build
# that replaces target/debug/* does not change them mid-run.
mkdir -p "$TMP/bin"
for b in socialauth-api socialauth-worker stubidp loadgen seedlinks; do
  ln -f "$BIN/$b" "$TMP/bin/$b" 2>/dev/null || cp "$BIN/$b" "$TMP/bin/$b"
done
BIN="$TMP/bin"

# ---- 2. the stub providers and the stack ---------------------------------------
API_PORT="$(free_port)"
W1_PORT="$(free_port)"
W2_PORT="$(free_port)"
STUB_A_PORT="$(free_port)"
STUB_B_PORT="$(free_port)"
PROM_PORT="$(free_port)"
BASE="http://127.0.0.1:$API_PORT"
REDIRECT_URI="http://127.0.0.1:9/cb"
ADMIN_KEY="picture-$SUFFIX"

start_stub() {
  local name="$1" port="$2"
  start_bg "$TMP/$name.log" "$BIN/stubidp" --bind "127.0.0.1:$port" --workers 1
  local pid=$PID
  for _ in $(seq 1 100); do
    grep -q '^STUBIDP_READY' "$TMP/$name.log" 2>/dev/null && break
    alive "$pid" || die "stubidp $name exited"
    sleep 0.1
  done
  grep -q '^STUBIDP_READY' "$TMP/$name.log" || die "stubidp $name did not start within 10 s"
  PID=$pid
}
start_stub stub-a "$STUB_A_PORT"
STUB_A_PID=$PID
start_stub stub-b "$STUB_B_PORT"
log "stub providers: stub-a 127.0.0.1:$STUB_A_PORT, stub-b 127.0.0.1:$STUB_B_PORT"

# A client secret that is a JWT expiring DAYS from now (its signature is not
# checked by anyone here: only its exp is read).
jwt_secret() {
  local days="$1" b64
  b64() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
  printf '%s.%s.%s' \
    "$(printf '{"alg":"ES256","kid":"PICTURE"}' | b64)" \
    "$(printf '{"iss":"socialauth-picture","iat":%d,"exp":%d}' "$(date +%s)" "$(($(date +%s) + days * 86400))" | b64)" \
    "$(printf 'not-a-signature' | b64)"
}

DB_NAME="socialauth_picture_$SUFFIX"
QUEUE_PREFIX="picture_$SUFFIX."
log "creating database $DB_NAME"
psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -qAtc "CREATE DATABASE $DB_NAME" >/dev/null
KEY0="$(head -c 32 /dev/urandom | base64)"
KEY1="$(head -c 32 /dev/urandom | base64)"

# config CURRENT_KEY_ID CURRENT_KEY [PREVIOUS_KEYS_TOML]
config() {
  cat <<EOF
[server]
bind = "127.0.0.1:$API_PORT"
# One client (this script) sends every request: no per-client rate.
rate_limit_per_minute = 0

[database]
url = "${ADMIN_URL%/*}/$DB_NAME"
max_connections = 8

[queue]
amqp_url = "$AMQP_URL"
name_prefix = "$QUEUE_PREFIX"

[worker]
# Each worker is started with its own SOCIALAUTH__WORKER__METRICS_BIND.
metrics_bind = "127.0.0.1:$W1_PORT"
max_attempts = 3
breaker_failures = 5
breaker_open_secs = 10

[security]
allowed_redirect_uris = ["$REDIRECT_URI"]
encryption_key_id = "$1"
encryption_key = "$2"
admin_key = "$ADMIN_KEY"
${3:-}

[refresh]
# Links are refreshed by the campaign only.
schedule_window_secs = 0
campaign_page_size = 100
campaign_pages_per_worker = 2

[reencrypt]
# Paced, so the re-encryption spans a few scrapes.
page_size = 100
pause_ms = 1000

[telemetry]
log_level = "warn"

[providers.stub-a]
protocol = "oauth2"
authorize_url = "http://127.0.0.1:$STUB_A_PORT/authorize"
token_url = "http://127.0.0.1:$STUB_A_PORT/token"
userinfo_url = "http://127.0.0.1:$STUB_A_PORT/userinfo"
client_id = "socialauth-picture"
client_secret = "$(jwt_secret 150)"
scopes = ["openid", "email", "profile"]

[providers.stub-b]
protocol = "oauth2"
authorize_url = "http://127.0.0.1:$STUB_B_PORT/authorize"
token_url = "http://127.0.0.1:$STUB_B_PORT/token"
userinfo_url = "http://127.0.0.1:$STUB_B_PORT/userinfo"
client_id = "socialauth-picture"
client_secret = "$(jwt_secret 10)"
scopes = ["openid", "email", "profile"]
# Each worker's budget at this provider: the burst of signups goes past it.
requests_per_second = 12
requests_burst = 12
EOF
}
CFG="$TMP/socialauth.toml"
config k1 "$KEY1" "$(printf '[security.previous_encryption_keys]\nk0 = "%s"' "$KEY0")" >"$CFG"
config k0 "$KEY0" >"$TMP/seed.toml"

log "socialauth-api migrate"
(cd "$TMP" && "$BIN/socialauth-api" --config "$CFG" migrate) >"$TMP/migrate.log" 2>&1 \
  || die "migrate failed"
log "seeding $SEEDED_LINKS links of stub-a under key k0"
(cd "$TMP" && "$BIN/seedlinks" --config "$TMP/seed.toml" --provider stub-a --count "$SEEDED_LINKS") \
  >"$TMP/seed.log" 2>&1 || die "seedlinks failed"

start_bg "$TMP/api.log" "$BIN/socialauth-api" --config "$CFG"
API_PID=$PID
start_bg "$TMP/worker-1.log" env SOCIALAUTH__WORKER__METRICS_BIND="127.0.0.1:$W1_PORT" \
  "$BIN/socialauth-worker" --config "$CFG"
W1_PID=$PID
start_bg "$TMP/worker-2.log" env SOCIALAUTH__WORKER__METRICS_BIND="127.0.0.1:$W2_PORT" \
  "$BIN/socialauth-worker" --config "$CFG"
W2_PID=$PID
wait_http "$BASE/readyz" 90 "$API_PID" "$TMP/api.log"
wait_http "http://127.0.0.1:$W1_PORT/metrics" 60 "$W1_PID" "$TMP/worker-1.log"
wait_http "http://127.0.0.1:$W2_PORT/metrics" 60 "$W2_PID" "$TMP/worker-2.log"
consumers=0
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
  consumers="$(rabbitmqctl -q list_queues name consumers 2>/dev/null | awk -v q="${QUEUE_PREFIX}login" '$1 == q {print $2}')"
  [ "${consumers:-0}" -ge 2 ] && break
  sleep 1
done
[ "${consumers:-0}" -ge 2 ] || die "${consumers:-0} of 2 workers consume ${QUEUE_PREFIX}login"
log "stack ready at $BASE (api $API_PID, workers $W1_PID $W2_PID with /metrics on $W1_PORT, $W2_PORT)"

# ---- 3. Prometheus -------------------------------------------------------------
mkdir -p "$TMP/prometheus"
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 2s

rule_files:
  - $ROOT/deploy/prometheus/alerts.yml

scrape_configs:
  - job_name: socialauth-api
    static_configs:
      - targets: ["127.0.0.1:$API_PORT"]
  - job_name: socialauth-worker
    static_configs:
      - targets: ["127.0.0.1:$W1_PORT", "127.0.0.1:$W2_PORT"]
EOF
PROM="http://127.0.0.1:$PROM_PORT"
start_bg "$TMP/prometheus.log" "$PROMETHEUS" --config.file="$TMP/prometheus.yml" \
  --storage.tsdb.path="$TMP/prometheus" --web.listen-address="127.0.0.1:$PROM_PORT"
PROM_PID=$PID
wait_http "$PROM/-/ready" 60 "$PROM_PID" "$TMP/prometheus.log"
deadline=$((SECONDS + 30))
until [ "$(curl -fsS "$PROM/api/v1/targets" | jq '[.data.activeTargets[] | select(.health == "up")] | length')" = 3 ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "Prometheus does not scrape all 3 targets"
  sleep 1
done
curl -fsS "$PROM/api/v1/rules" | jq -e '[.data.groups[].rules[]] | length > 0' >/dev/null \
  || die "Prometheus loaded no alert rules"
log "Prometheus at $PROM scrapes the api and both workers"

# ---- 4. traffic ------------------------------------------------------------------
admin() {
  curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_KEY" "$@"
}

# Until DEADLINE (epoch s): codes the provider refuses, a state that was never
# issued, a provider that is not configured; about one request a second.
refused_logins() {
  local deadline="$1" n=0 provider
  while [ "$(date +%s)" -lt "$deadline" ]; do
    n=$((n + 1))
    provider=stub-a
    [ $((n % 2)) = 0 ] && provider=stub-b
    curl -sS -o /dev/null --max-time 20 -H 'Content-Type: application/json' \
      -d "{\"provider\":\"$provider\",\"code\":\"bad-$n\",\"redirect_uri\":\"$REDIRECT_URI\"}" \
      "$BASE/social-auth" || true
    if [ $((n % 5)) = 0 ]; then
      curl -sS -o /dev/null --max-time 20 -H 'Content-Type: application/json' \
        -d "{\"code\":\"u$n\",\"state\":\"never-issued-$n\"}" "$BASE/auth/o/stub-a/" || true
    fi
    if [ $((n % 7)) = 0 ]; then
      curl -sS -o /dev/null --max-time 20 -H 'Content-Type: application/json' \
        -d "{\"provider\":\"nope\",\"code\":\"x\",\"redirect_uri\":\"$REDIRECT_URI\"}" \
        "$BASE/social-auth" || true
    fi
    sleep 1
  done
}

T0=0
at_second() {
  local wait=$((T0 + $1 - $(date +%s)))
  [ "$wait" -le 0 ] || pause "$wait"
}

LOADGEN=(--base-url "$BASE" --redirect-uri "$REDIRECT_URI" --warmup 0s --progress 0s --timeout 30s)
traffic() {
  T0="$(date +%s)"
  log "traffic for ${TRAFFIC_SECS}s"
  start_bg "$TMP/loadgen-a.log" "$BIN/loadgen" "${LOADGEN[@]}" --provider stub-a --flow djoser \
    --mode mixed --mixed-new-ratio 0.3 --users 300 --concurrency 8 --rate 6 --duration "${TRAFFIC_SECS}s"
  local lg_a=$PID
  start_bg "$TMP/loadgen-b.log" "$BIN/loadgen" "${LOADGEN[@]}" --provider stub-b --flow social-auth \
    --mode mixed --mixed-new-ratio 0.3 --users 200 --concurrency 8 --rate 4 --duration "${TRAFFIC_SECS}s"
  local lg_b=$PID
  refused_logins $((T0 + TRAFFIC_SECS)) >"$TMP/refused.log" 2>&1 &
  local refused=$!
  STARTED+=("$refused")

  at_second "$REENCRYPT_AT"
  log "POST /admin/reencrypt: $(admin -X POST "$BASE/admin/reencrypt")"
  at_second "$CAMPAIGN_AT"
  log "POST /admin/refresh-campaigns: $(admin -H 'Content-Type: application/json' \
    -d '{"expiring_within_seconds": 7200, "rate_per_second": 15}' "$BASE/admin/refresh-campaigns")"
  at_second "$OUTAGE_AT"
  log "stub-a stopped for ${OUTAGE_SECS}s"
  stop_pids "$STUB_A_PID"
  forget_pids "$STUB_A_PID"
  at_second $((OUTAGE_AT + OUTAGE_SECS))
  start_stub stub-a-again "$STUB_A_PORT"
  STUB_A_PID=$PID
  log "stub-a started again"
  at_second "$BURST_AT"
  log "a burst of 250 stub-b signups at 25/s"
  start_bg "$TMP/loadgen-burst.log" "$BIN/loadgen" "${LOADGEN[@]}" --provider stub-b \
    --flow social-auth --mode signup --concurrency 32 --rate 25 --count 250
  local burst=$PID

  local pid
  for pid in "$lg_a" "$lg_b" "$burst" "$refused"; do
    wait "$pid" || log "traffic process $pid exited $?"
    forget_pids "$pid"
  done
  grep -h -A1 '^\[measured\]' "$TMP"/loadgen-*.log | sed 's/^/    /' >&2 || true
}

# The window starts with the first scrapes, before the traffic.
pause 6
WINDOW_START="$(date +%s)"
pause 4
traffic
# A few more scrapes after the traffic: the rate windows' tail.
pause 10
WINDOW_END="$(date +%s)"
for pid in "$API_PID" "$W1_PID" "$W2_PID"; do
  alive "$pid" || die "a process of the stack (pid $pid) is gone"
done

# ---- 5. the picture ----------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
NOTE="$(date -u -d "@$WINDOW_START" '+%Y-%m-%d %H:%M')–$(date -u -d "@$WINDOW_END" '+%H:%M') UTC:"
NOTE+=" socialauth-api and 2 socialauth-worker processes (debug build), PostgreSQL, RabbitMQ, two stub OAuth 2 providers (stub-a, stub-b);"
NOTE+=" logins from the tests crate's loadgen, refused codes, a re-encryption from key k0 to k1, a refresh campaign,"
NOTE+=" stub-a stopped for ${OUTAGE_SECS} s at $(date -u -d "@$((T0 + OUTAGE_AT))" '+%H:%M:%S'), a burst of stub-b signups past its request budget."
log "render.py → ${OUT#"$ROOT"/}"
"$VENV/bin/python" "$HERE/render.py" --prometheus "$PROM" \
  --dashboard "$ROOT/deploy/grafana/dashboards/socialauth.json" \
  --start "$WINDOW_START" --end "$WINDOW_END" --step 2 --rate-interval 30s \
  --note "$NOTE" --out "$OUT"
log "wrote ${OUT#"$ROOT"/}"
