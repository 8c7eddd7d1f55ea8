#!/usr/bin/env bash
# The one-command benchmark of socialauth: builds the release binaries, makes
# sure PostgreSQL and RabbitMQ run, starts the production stack (api + K
# workers on a fresh PostgreSQL database and uniquely named queues) and then
# the embedded default (one api, SQLite, in-process queue), each against the
# stub provider (target/release/stubidp), drives logins with
# target/release/loadgen, samples the CPU and memory of every process of the
# stack from /proc, and writes JSON per run plus a Markdown summary.
#
#   bash tests/bench/run.sh [--quick] [--runs 3] [--duration 60] [--warmup 5]
#        [--workers K] [--scenarios a,b,…] [--out DIR] [--concurrency N]
#        [--users N] [--no-build] [--keep-tmp] [--limits] [--pg-tls require|disable]
#        [--base-url URL [--stub-bind ADDR] [--target-pids NAME=PID,…]
#                        [--target-services postgres,rabbitmq|none]]
#        [--provider NAME] [--path-djoser PATH] [--path-social PATH]
#        [--redirect-uri URI]
#
# Scenarios (each a separate loadgen run, repeated --runs times):
#   signup-djoser signup-social returning-social mixed-social returning-djoser
#   p99-at-1000     production stack (PostgreSQL + RabbitMQ + K workers)
#   embedded-signup-djoser embedded-signup-social embedded-returning-social
#   embedded-returning-djoser      the embedded default (also accepted:
#   embedded-mixed-social embedded-p99-at-1000)
#   campaign campaign-rate  production stack: a refresh campaign over
#                   BENCH_CAMPAIGN_ACCOUNTS seeded links against the stub's
#                   refresh grant, as fast as it goes / at BENCH_CAMPAIGN_RATE
#   groups: all (default), production, embedded, campaigns
#
# --quick: 10 s measured, 2 s warm-up, 1 run, 2000 returning users, 3 s idle
# sample; results under docs/bench-results/<timestamp>-quick/.
# --limits: afterwards, tests/bench/limits.sh into the same folder (PostgreSQL
# and RabbitMQ alone: what this machine can do at most).
# --pg-tls: the production stack reaches PostgreSQL over TLS (`require`, the
# default: what a deployment's URL gets) or without (`disable`, the variant
# for a local database), as `sslmode` in database.url.
#
# --base-url URL: measure an implementation that is already running instead
# of starting socialauth: only the stub and the load generator are started
# (the stub on --stub-bind, default 127.0.0.1:18999, so the target can be
# configured beforehand with authorize/token/userinfo URLs under it), the
# scenarios run without the embedded ones, and the CPU of the target is
# measured only for the processes given by --target-pids (NAME api or
# worker* counts as that component, any other name as "target"), plus
# PostgreSQL and RabbitMQ machine-wide unless --target-services says otherwise.
#
# Environment (defaults in brackets):
#   BENCH_CONCURRENCY_SIGNUP [256] BENCH_CONCURRENCY_RETURNING [256]
#   BENCH_CONCURRENCY_MIXED [256] virtual users (connections) per scenario
#   BENCH_USERS [10000]           returning/mixed pool, signed up first
#   BENCH_RATE [1000]             p99 scenario: open-loop logins/s
#   BENCH_P99_MODE [signup]       p99 scenario: signup|returning|mixed
#   BENCH_P99_CONCURRENCY [256]   p99 scenario: most logins in flight
#   BENCH_DB_POOL [16]            [database] max_connections per process
#   BENCH_LOGIN_BATCH_WAIT_MS [3] [database] login_batch_wait_ms
#   BENCH_PREFETCH [64]           [queue] prefetch per worker
#   BENCH_PUBLISH_CHANNELS [4]    [queue] publish_channels of the api
#   BENCH_EMBEDDED_CONCURRENCY [64]  [worker] concurrency, embedded default
#   BENCH_STUB_WORKERS [1]        stubidp --workers
#   BENCH_LOADGEN_THREADS [1]     loadgen --threads
#   BENCH_IDLE_SECS [5]           machine sample before the scenarios
#   BENCH_PG_TLS [require]        --pg-tls
#   BENCH_CAMPAIGN_ACCOUNTS [100000]  links seeded for the campaign scenarios
#   BENCH_CAMPAIGN_RATE [5000]    campaign-rate: rate_per_second asked
#   BENCH_CAMPAIGN_CONCURRENCY [128]  [refresh] campaign_concurrency per worker
#   BENCH_CAMPAIGN_PAGES [4]      [refresh] campaign_pages_per_worker
#   BENCH_CAMPAIGN_PAGE_SIZE [500]    [refresh] campaign_page_size
#   SOCIALAUTH_TEST_DATABASE_URL  [postgres://postgres:postgres@127.0.0.1:5432/postgres]
#   SOCIALAUTH_TEST_AMQP_URL      [amqp://guest:guest@127.0.0.1:5672/%2f]
#
# Everything it starts is stopped on exit (also on Ctrl-C); the database is
# dropped and the queues and exchange of its prefix are deleted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$ROOT/tests/bench"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
ADMIN_URL="${SOCIALAUTH_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
AMQP_URL="${SOCIALAUTH_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

# ---- options -----------------------------------------------------------------
QUICK=0
RUNS=""
DURATION=""
WARMUP=""
WORKERS=2
SCENARIOS="all"
OUT=""
CONCURRENCY=""
USERS="${BENCH_USERS:-}"
BUILD=1
KEEP_TMP=0
LIMITS=0
BASE_URL=""
STUB_BIND=""
TARGET_PIDS=""
TARGET_SERVICES="postgres,rabbitmq"
PROVIDER="stub"
PATH_DJOSER=""
PATH_SOCIAL=""
REDIRECT_URI="http://127.0.0.1:9/cb"
PG_TLS="${BENCH_PG_TLS:-require}"

need() { [ "$#" -ge 2 ] || die "$1 needs a value"; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --runs) need "$@"; RUNS="$2"; shift ;;
    --duration) need "$@"; DURATION="${2%s}"; shift ;;
    --warmup) need "$@"; WARMUP="${2%s}"; shift ;;
    --workers) need "$@"; WORKERS="$2"; shift ;;
    --scenarios) need "$@"; SCENARIOS="$2"; shift ;;
    --out) need "$@"; OUT="$2"; shift ;;
    --concurrency) need "$@"; CONCURRENCY="$2"; shift ;;
    --users) need "$@"; USERS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --keep-tmp) KEEP_TMP=1 ;;
    --limits) LIMITS=1 ;;
    --base-url) need "$@"; BASE_URL="${2%/}"; shift ;;
    --stub-bind) need "$@"; STUB_BIND="$2"; shift ;;
    --target-pids) need "$@"; TARGET_PIDS="$2"; shift ;;
    --target-services) need "$@"; TARGET_SERVICES="$2"; shift ;;
    --provider) need "$@"; PROVIDER="$2"; shift ;;
    --path-djoser) need "$@"; PATH_DJOSER="$2"; shift ;;
    --path-social) need "$@"; PATH_SOCIAL="$2"; shift ;;
    --redirect-uri) need "$@"; REDIRECT_URI="$2"; shift ;;
    --pg-tls) need "$@"; PG_TLS="$2"; shift ;;
    -h | --help) usage 0 ;;
    *) die "unknown argument $1 (--help lists them)" ;;
  esac
  shift
done

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
case "$PG_TLS" in require | disable) ;; *) die "--pg-tls is require or disable, not $PG_TLS" ;; esac
if [ "$QUICK" = 1 ]; then
  RUNS="${RUNS:-1}" DURATION="${DURATION:-10}" WARMUP="${WARMUP:-2}" USERS="${USERS:-2000}"
  IDLE_SECS="${BENCH_IDLE_SECS:-3}"
else
  RUNS="${RUNS:-3}" DURATION="${DURATION:-60}" WARMUP="${WARMUP:-5}" USERS="${USERS:-10000}"
  IDLE_SECS="${BENCH_IDLE_SECS:-5}"
fi
for v in RUNS DURATION WARMUP WORKERS USERS IDLE_SECS; do
  is_uint "${!v}" || die "--${v,,} must be a whole number (got '${!v}')"
done
if [ "$RUNS" -lt 1 ] || [ "$DURATION" -lt 1 ]; then die "--runs and --duration must be at least 1"; fi
[ -z "$CONCURRENCY" ] || is_uint "$CONCURRENCY" || die "--concurrency must be a whole number"
C_SIGNUP="${CONCURRENCY:-${BENCH_CONCURRENCY_SIGNUP:-256}}"
C_RETURNING="${CONCURRENCY:-${BENCH_CONCURRENCY_RETURNING:-256}}"
C_MIXED="${CONCURRENCY:-${BENCH_CONCURRENCY_MIXED:-256}}"
RATE="${BENCH_RATE:-1000}"
P99_MODE="${BENCH_P99_MODE:-signup}"
P99_CONCURRENCY="${BENCH_P99_CONCURRENCY:-256}"
DB_POOL="${BENCH_DB_POOL:-16}"
LOGIN_BATCH_WAIT_MS="${BENCH_LOGIN_BATCH_WAIT_MS:-3}"
is_uint "$LOGIN_BATCH_WAIT_MS" || die "BENCH_LOGIN_BATCH_WAIT_MS must be a whole number"
PREFETCH="${BENCH_PREFETCH:-64}"
PUBLISH_CHANNELS="${BENCH_PUBLISH_CHANNELS:-4}"
EMBEDDED_CONCURRENCY="${BENCH_EMBEDDED_CONCURRENCY:-64}"
STUB_WORKERS="${BENCH_STUB_WORKERS:-1}"
LOADGEN_THREADS="${BENCH_LOADGEN_THREADS:-1}"
case "$P99_MODE" in signup | returning | mixed) ;; *) die "BENCH_P99_MODE must be signup, returning or mixed" ;; esac
CAMPAIGN_ACCOUNTS="${BENCH_CAMPAIGN_ACCOUNTS:-100000}"
CAMPAIGN_RATE="${BENCH_CAMPAIGN_RATE:-5000}"
CAMPAIGN_CONCURRENCY="${BENCH_CAMPAIGN_CONCURRENCY:-128}"
CAMPAIGN_PAGES="${BENCH_CAMPAIGN_PAGES:-4}"
CAMPAIGN_PAGE_SIZE="${BENCH_CAMPAIGN_PAGE_SIZE:-500}"
for v in CAMPAIGN_ACCOUNTS CAMPAIGN_RATE CAMPAIGN_CONCURRENCY CAMPAIGN_PAGES CAMPAIGN_PAGE_SIZE; do
  is_uint "${!v}" || die "BENCH_$v must be a whole number (got '${!v}')"
done
ADMIN_KEY="socialauth-bench-admin-key"

PRODUCTION_SCENARIOS=(signup-djoser signup-social returning-social mixed-social returning-djoser p99-at-1000)
CAMPAIGN_SCENARIOS=(campaign campaign-rate)
EMBEDDED_DEFAULT=(embedded-signup-djoser embedded-signup-social embedded-returning-social embedded-returning-djoser)
EMBEDDED_EXTRA=(embedded-mixed-social embedded-p99-at-1000)

SELECTED=()
IFS=',' read -r -a requested <<<"$SCENARIOS"
for s in "${requested[@]}"; do
  case "$s" in
    all) SELECTED+=("${PRODUCTION_SCENARIOS[@]}" "${CAMPAIGN_SCENARIOS[@]}" "${EMBEDDED_DEFAULT[@]}") ;;
    production) SELECTED+=("${PRODUCTION_SCENARIOS[@]}") ;;
    campaigns) SELECTED+=("${CAMPAIGN_SCENARIOS[@]}") ;;
    embedded) SELECTED+=("${EMBEDDED_DEFAULT[@]}") ;;
    "") ;;
    *)
      known=" ${PRODUCTION_SCENARIOS[*]} ${CAMPAIGN_SCENARIOS[*]} ${EMBEDDED_DEFAULT[*]} ${EMBEDDED_EXTRA[*]} "
      [[ "$known" == *" $s "* ]] || die "unknown scenario '$s' (known:$known)"
      SELECTED+=("$s")
      ;;
  esac
done
PROD_RUN=()
EMB_RUN=()
for s in "${SELECTED[@]}"; do
  if [[ "$s" == embedded-* ]]; then
    [[ " ${EMB_RUN[*]} " == *" ${s#embedded-} "* ]] || EMB_RUN+=("${s#embedded-}")
  else
    [[ " ${PROD_RUN[*]} " == *" $s "* ]] || PROD_RUN+=("$s")
  fi
done
if [ -n "$BASE_URL" ]; then
  if [ "${#EMB_RUN[@]}" -gt 0 ]; then
    log "--base-url: the embedded scenarios are skipped (${EMB_RUN[*]/#/embedded-})"
    EMB_RUN=()
  fi
  kept=()
  for s in "${PROD_RUN[@]}"; do
    if [[ "$s" == campaign* ]]; then log "--base-url: $s is skipped (socialauth's own campaigns)"; else kept+=("$s"); fi
  done
  PROD_RUN=("${kept[@]}")
  STUB_BIND="${STUB_BIND:-127.0.0.1:18999}"
else
  STUB_BIND="${STUB_BIND:-127.0.0.1:0}"
  [ -z "$TARGET_PIDS" ] || die "--target-pids goes with --base-url"
fi
[ "$((${#PROD_RUN[@]} + ${#EMB_RUN[@]}))" -gt 0 ] || die "no scenario selected"

# As in production: no backtrace capture (anyhow would capture one for
# every error value), no log filter from the caller's shell.
# The config file is the whole configuration: SOCIALAUTH__SECTION__KEY
# variables of the caller would override it.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE RUST_LOG SOCIALAUTH_CONFIG
while read -r var; do unset "$var"; done < <(compgen -e | grep '^SOCIALAUTH__' || true)

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
if [ -z "$OUT" ]; then
  OUT="$ROOT/docs/bench-results/$STAMP"
  [ "$QUICK" = 0 ] || OUT="$OUT-quick"
fi
mkdir -p "$OUT/runs"
OUT="$(cd "$OUT" && pwd)"
NOTES=()

# ---- processes and cleanup ---------------------------------------------------
TMP=""
STARTED=() # pids of the long-running processes this script started
DB_NAME=""
QUEUE_PREFIX=""
QUEUES_USED=0

# alive, stop_pids, forget_pids, free_port.
# shellcheck source=../lib/processes.sh
source "$ROOT/tests/lib/processes.sh"

drop_queues() {
  [ -n "$QUEUE_PREFIX" ] && [ "$QUEUES_USED" = 1 ] || return 0
  local q
  for q in login refresh campaign dead; do
    rabbitmqctl -q delete_queue "${QUEUE_PREFIX}$q" >/dev/null 2>&1 \
      || log "could not delete queue ${QUEUE_PREFIX}$q"
  done
  rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"${QUEUE_PREFIX}socialauth\">>), false, <<\"socialauth-bench\">>)." >/dev/null 2>&1 \
    || log "could not delete exchange ${QUEUE_PREFIX}socialauth (durable; harmless, delete it by hand)"
}

drop_database() {
  [ -n "$DB_NAME" ] || return 0
  psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 \
    || log "could not drop database $DB_NAME"
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "${#STARTED[@]}" -gt 0 ]; then
    log "stopping ${STARTED[*]}"
    stop_pids "${STARTED[@]}"
  fi
  drop_queues
  drop_database
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    mkdir -p "$OUT/logs"
    local f
    for f in "$TMP"/*.log; do
      [ -f "$f" ] && tail -c 1000000 "$f" >"$OUT/logs/${f##*/}"
    done
    for f in "$TMP"/embedded/*.log; do
      [ -f "$f" ] && tail -c 1000000 "$f" >"$OUT/logs/embedded-${f##*/}"
    done
    if [ "$KEEP_TMP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP="$(mktemp -d /tmp/socialauth-bench.XXXXXX)"
SUFFIX="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# Starts "$@" in the background in directory $1 with output to $2; sets PID.
PID=""
start_bg() {
  local dir="$1" logfile="$2"
  shift 2
  (cd "$dir" && exec "$@" </dev/null >"$logfile" 2>&1) &
  PID=$!
  STARTED+=("$PID")
}

# The long-running processes of the current stack ("name=pid"), and their logs.
STACK=()
STACK_LOGS=()
STACK_DEAD=""
# Sets STACK_DEAD to a description of every stack process that is gone.
check_stack() {
  STACK_DEAD=""
  local i name pid status
  for i in "${!STACK[@]}"; do
    name="${STACK[$i]%%=*}" pid="${STACK[$i]#*=}"
    alive "$pid" && continue
    status=0
    wait "$pid" 2>/dev/null || status=$?
    if [ "$status" -gt 128 ]; then
      status="killed by signal $((status - 128)) ($(kill -l "$((status - 128))" 2>/dev/null || echo '?'))"
    else
      status="exit status $status"
    fi
    STACK_DEAD+="${STACK_DEAD:+; }$name (pid $pid) $status"
    log "$name (pid $pid) is gone: $status; its last log lines:"
    tail -n 10 "${STACK_LOGS[$i]}" >&2 2>/dev/null || true
  done
  [ -z "$STACK_DEAD" ]
}

wait_ready() {
  local url="$1" pid="$2" logfile="$3" deadline=$((SECONDS + 90))
  until curl -fsS -o /dev/null --max-time 2 "$url/readyz" 2>/dev/null; do
    if ! alive "$pid"; then
      tail -n 40 "$logfile" >&2
      die "the api exited before it was ready (log above)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || {
      tail -n 40 "$logfile" >&2
      die "$url/readyz did not answer 200 within 90 s"
    }
    sleep 0.2
  done
}

# ---- 1. build and services ---------------------------------------------------
cd "$ROOT"
if [ "$BUILD" = 1 ]; then
  if [ -n "$BASE_URL" ]; then
    log "cargo build --release -p socialauth-tests --bins"
    cargo build --release -p socialauth-tests --bins
  else
    log "cargo build --release -p socialauth-api -p socialauth-worker -p socialauth-tests --bins"
    cargo build --release -p socialauth-api -p socialauth-worker -p socialauth-tests --bins
  fi
fi
for b in stubidp loadgen; do [ -x "$BIN/$b" ] || die "$BIN/$b is missing (build socialauth-tests --release)"; done
if [ -z "$BASE_URL" ]; then
  for b in socialauth-api socialauth-worker; do [ -x "$BIN/$b" ] || die "$BIN/$b is missing"; done
  bash "$ROOT/tests/run.sh" --services-only
fi
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"

# The binaries of this run, hard-linked (or copied) into the temp dir: a
# concurrent cargo build that replaces target/release/* does not change
# them between scenarios.
mkdir -p "$TMP/bin"
for b in stubidp loadgen seedlinks socialauth-api socialauth-worker; do
  [ -x "$BIN/$b" ] || continue
  ln -f "$BIN/$b" "$TMP/bin/$b" 2>/dev/null || cp "$BIN/$b" "$TMP/bin/$b"
done
BIN="$TMP/bin"

LOADGEN_HELP="$("$BIN/loadgen" --help 2>&1 || true)"
has_flag() { grep -q -- "$1" <<<"$LOADGEN_HELP"; }
LOADGEN_COMMON=(--provider "$PROVIDER" --redirect-uri "$REDIRECT_URI" --threads "$LOADGEN_THREADS")
if [ -n "$PATH_DJOSER" ]; then
  has_flag --path-djoser || die "this loadgen has no --path-djoser"
  LOADGEN_COMMON+=(--path-djoser "$PATH_DJOSER")
fi
if [ -n "$PATH_SOCIAL" ]; then
  has_flag --path-social || die "this loadgen has no --path-social"
  LOADGEN_COMMON+=(--path-social "$PATH_SOCIAL")
fi

# ---- environment record ------------------------------------------------------
pg_setting() { psql "$ADMIN_URL" -qAtc "SHOW $1" 2>/dev/null || echo "?"; }
ORDER_JSON="$(printf '%s\n' "${SELECTED[@]}" | jq -R . | jq -s .)"
jq -n \
  --arg started "$STAMP" \
  --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
  --argjson dirty "$([ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && echo true || echo false)" \
  --arg cpu "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)" \
  --arg nproc "$(nproc)" \
  --arg mem "$(awk '/^MemTotal/{printf "%.0f", $2/1048576}' /proc/meminfo)" \
  --arg kernel "$(uname -r)" \
  --arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg pgv "$(psql "$ADMIN_URL" -qAtc 'SHOW server_version' 2>/dev/null || echo '?')" \
  --arg pgsync "$(pg_setting synchronous_commit)" \
  --arg pgfsync "$(pg_setting fsync)" \
  --arg pgmax "$(pg_setting max_connections)" \
  --arg mqv "$(rabbitmqctl -q version 2>/dev/null || echo '?')" \
  --arg rustc "$(rustc --version 2>/dev/null || echo '?')" \
  --arg target "${BASE_URL:-}" \
  --argjson order "$ORDER_JSON" \
  --argjson settings "$(jq -n --argjson runs "$RUNS" --argjson duration "$DURATION" --argjson warmup "$WARMUP" \
    --argjson workers "$WORKERS" --argjson db_pool "$DB_POOL" --argjson login_batch_wait_ms "$LOGIN_BATCH_WAIT_MS" --argjson prefetch "$PREFETCH" \
    --argjson publish_channels "$PUBLISH_CHANNELS" --argjson embedded_concurrency "$EMBEDDED_CONCURRENCY" \
    --argjson stub_workers "$STUB_WORKERS" --argjson loadgen_threads "$LOADGEN_THREADS" \
    --argjson users "$USERS" --argjson c_signup "$C_SIGNUP" --argjson c_returning "$C_RETURNING" \
    --argjson c_mixed "$C_MIXED" --argjson rate "$RATE" --arg p99_mode "$P99_MODE" \
    --argjson p99_concurrency "$P99_CONCURRENCY" --argjson idle "$IDLE_SECS" --argjson quick "$QUICK" \
    --arg pg_tls "$PG_TLS" \
    '{runs: $runs, pg_tls: $pg_tls, duration_s: $duration, warmup_s: $warmup, workers: $workers, db_pool: $db_pool,
      login_batch_wait_ms: $login_batch_wait_ms, prefetch: $prefetch, publish_channels: $publish_channels, embedded_concurrency: $embedded_concurrency,
      stub_workers: $stub_workers, loadgen_threads: $loadgen_threads, users: $users,
      concurrency: {signup: $c_signup, returning: $c_returning, mixed: $c_mixed},
      p99: {rate: $rate, mode: $p99_mode, max_in_flight: $p99_concurrency}, idle_s: $idle, quick: ($quick == 1)}')" \
  '{started_utc: $started, git_commit: $commit, git_dirty: $dirty, cpu_model: $cpu, nproc: ($nproc|tonumber),
    mem_total_gib: ($mem|tonumber), kernel: $kernel, loadavg_at_start: $loadavg, postgres_version: $pgv,
    pg_synchronous_commit: $pgsync, pg_fsync: $pgfsync, pg_max_connections: $pgmax, rabbitmq_version: $mqv,
    rustc: $rustc, target_base_url: $target, scenario_order: $order, settings: $settings}' \
  >"$OUT/environment.json"

# ---- the stub ----------------------------------------------------------------
start_bg "$TMP" "$TMP/stub.log" "$BIN/stubidp" --bind "$STUB_BIND" --workers "$STUB_WORKERS"
STUB_PID=$PID
STACK=("stubidp=$STUB_PID")
STACK_LOGS=("$TMP/stub.log")
STUB_URL=""
for _ in $(seq 1 100); do
  STUB_URL="$(sed -n 's/^STUBIDP_READY \(http[^ ]*\).*/\1/p' "$TMP/stub.log" | head -n 1)"
  [ -n "$STUB_URL" ] && break
  alive "$STUB_PID" || { cat "$TMP/stub.log" >&2; die "stubidp exited"; }
  sleep 0.1
done
[ -n "$STUB_URL" ] || die "stubidp did not print STUBIDP_READY within 10 s"
log "stub provider at $STUB_URL (pid $STUB_PID)"

provider_toml() {
  cat <<EOF
[providers.$PROVIDER]
protocol = "oauth2"
authorize_url = "$STUB_URL/authorize"
token_url = "$STUB_URL/token"
userinfo_url = "$STUB_URL/userinfo"
client_id = "socialauth-bench"
client_secret = "socialauth-bench-secret"
scopes = ["openid", "email", "profile"]
EOF
}

# ---- sampling and one loadgen run --------------------------------------------
# Components of the current stack, as sampler.py arguments.
SAMPLE_ARGS=()
# What else to measure: PostgreSQL and RabbitMQ (production, target).
SERVICE_ARGS=()

# run_scenario BACKEND SCENARIO BASE_URL
run_scenario() {
  local backend="$1" scenario="$2" base="$3"
  local flow mode conc load extra=() users_args=()
  case "$scenario" in
    *-djoser) flow=djoser ;;
    *) flow=social-auth ;;
  esac
  case "$scenario" in
    signup-*) mode=signup conc="$C_SIGNUP" ;;
    returning-*) mode=returning conc="$C_RETURNING" ;;
    mixed-*) mode=mixed conc="$C_MIXED" ;;
    p99-at-1000)
      mode="$P99_MODE"
      if has_flag --rate; then
        conc="$P99_CONCURRENCY"
        extra=(--rate "$RATE")
        load="open loop $RATE/s ($mode, ≤$conc in flight)"
      else
        # No open loop: the concurrency that gave about RATE/s in the
        # signup-social runs (Little's law), else BENCH_P99_CONCURRENCY.
        conc="$(p99_closed_loop_concurrency "$backend")"
        load="closed loop c=$conc (≈$RATE/s; no --rate in loadgen)"
        NOTES+=("p99-at-1000 ($backend): the loadgen has no --rate; closed loop at concurrency $conc")
      fi
      ;;
    *) die "scenario $scenario?" ;;
  esac
  [ "$mode" = signup ] || users_args=(--users "$USERS")
  load="${load:-c=$conc}"
  local run id dir rc
  for run in $(seq 1 "$RUNS"); do
    id="$backend-$scenario-r$run"
    dir="$TMP/runs/$id"
    mkdir -p "$dir"
    check_stack || abort_bench "before $id: $STACK_DEAD"
    log "$id: loadgen --flow $flow --mode $mode --concurrency $conc ${extra[*]} ${users_args[*]} --duration ${DURATION}s"
    rc=0
    # In the background and waited for, so a signal to this script is
    # handled at once (cleanup stops the sampler, which stops the loadgen).
    python3 "$BENCH/sampler.py" --out "$dir/sampler.json" --log "$dir/loadgen.log" \
      --timeout "$((DURATION + WARMUP + 900))" \
      --marker 'measured phase' --window "$DURATION" --child-name loadgen --reset-hwm \
      "${SERVICE_ARGS[@]}" "${SAMPLE_ARGS[@]}" -- \
      "$BIN/loadgen" --base-url "$base" "${LOADGEN_COMMON[@]}" --flow "$flow" --mode "$mode" \
      --concurrency "$conc" "${extra[@]}" "${users_args[@]}" --duration "${DURATION}s" \
      --warmup "${WARMUP}s" --json "$dir/loadgen.json" &
    local sampler_pid=$!
    STARTED+=("$sampler_pid")
    wait "$sampler_pid" || rc=$?
    forget_pids "$sampler_pid"
    if [ "$rc" != 0 ]; then
      log "$id: loadgen exited $rc; its last lines:"
      tail -n 15 "$dir/loadgen.log" >&2 || true
    fi
    grep -A1 '^\[measured\]' "$dir/loadgen.log" | sed 's/^/    /' >&2 || true
    local died=""
    check_stack || died="$STACK_DEAD"
    jq -n --arg backend "$backend" --arg scenario "$scenario" --argjson run "$run" \
      --arg died "$died" \
      --arg flow "$flow" --arg mode "$mode" --argjson concurrency "$conc" --arg load "$load" \
      --argjson rc "$rc" --argjson duration "$DURATION" --argjson warmup "$WARMUP" \
      --arg base "$base" --argjson workers "$([ "$backend" = production ] && echo "$WORKERS" || echo 0)" \
      --slurpfile lg <(cat "$dir/loadgen.json" 2>/dev/null || echo null) \
      --slurpfile s <(cat "$dir/sampler.json" 2>/dev/null || echo null) \
      '{meta: {backend: $backend, scenario: $scenario, run: $run, flow: $flow, mode: $mode,
               concurrency: $concurrency, load: $load, exit_code: $rc, duration_s: $duration,
               warmup_s: $warmup, base_url: $base, workers: $workers,
               stack_died: (if $died == "" then null else $died end)},
        loadgen: $lg[0], sampler: $s[0]}' >"$OUT/runs/$id.json"
    cp "$dir/loadgen.log" "$OUT/runs/$id.loadgen.log" 2>/dev/null || true
    [ -z "$died" ] || abort_bench "during $id: $died"
    sleep 2
  done
}

# run_campaign SCENARIO BASE_URL: a refresh campaign over the seeded links
# (seeded at the first such run), through `socialauth-api campaign start`
# following it; CPU from the start's answer to the campaign's end.
SEEDED=0
DB_URL=""
PROD_CFG=""
run_campaign() {
  local scenario="$1" base="$2" rate_args=() rate_json=null run id dir rc cid
  if [ "$scenario" = campaign-rate ]; then
    rate_args=(--rate "$CAMPAIGN_RATE")
    rate_json="$CAMPAIGN_RATE"
  fi
  if [ "$SEEDED" = 0 ]; then
    log "seeding $CAMPAIGN_ACCOUNTS links of $PROVIDER"
    "$BIN/seedlinks" --config "$PROD_CFG" --provider "$PROVIDER" --count "$CAMPAIGN_ACCOUNTS" \
      >"$TMP/seed.log" 2>&1 || { cat "$TMP/seed.log" >&2; die "seeding failed"; }
    SEEDED=1
  fi
  for run in $(seq 1 "$RUNS"); do
    id="production-$scenario-r$run"
    dir="$TMP/runs/$id"
    mkdir -p "$dir"
    check_stack || abort_bench "before $id: $STACK_DEAD"
    # Every link expired a minute ago, usable, nobody refreshing it.
    psql "$DB_URL" -v ON_ERROR_STOP=1 -qAtc "UPDATE social_accounts SET \
        expires_at = (extract(epoch from clock_timestamp()) * 1000)::bigint - 60000, \
        needs_reauth = false, refresh_lease_until = NULL, refresh_lease_owner = NULL" >/dev/null
    psql "$DB_URL" -qAtc "VACUUM ANALYZE social_accounts" >/dev/null 2>&1 || true
    log "$id: campaign start --expiring-within 0 ${rate_args[*]} over $CAMPAIGN_ACCOUNTS links"
    rc=0
    python3 "$BENCH/sampler.py" --out "$dir/sampler.json" --log "$dir/campaign.log" \
      --timeout 1800 --marker '^[0-9a-f]{8}-[0-9a-f]{4}-' --child-name cli --reset-hwm \
      "${SERVICE_ARGS[@]}" "${SAMPLE_ARGS[@]}" -- \
      "$BIN/socialauth-api" --config "$PROD_CFG" campaign --url "$base" --interval-ms 200 \
      start --provider "$PROVIDER" --expiring-within 0 "${rate_args[@]}" &
    local sampler_pid=$!
    STARTED+=("$sampler_pid")
    wait "$sampler_pid" || rc=$?
    forget_pids "$sampler_pid"
    cid="$(grep -m1 -oE '^[0-9a-f]{8}-[0-9a-f-]{27}' "$dir/campaign.log" || true)"
    [ -n "$cid" ] || { tail -n 20 "$dir/campaign.log" >&2; die "$id: the campaign did not start"; }
    curl -fsS --max-time 10 -H "Authorization: Bearer $ADMIN_KEY" \
      "$base/admin/refresh-campaigns/$cid" >"$dir/campaign.json" || echo null >"$dir/campaign.json"
    tail -n 1 "$dir/campaign.log" | sed 's/^/    /' >&2 || true
    local died=""
    check_stack || died="$STACK_DEAD"
    # The campaign's own clock: from its creation to its end; a refreshed
    # account counts as a "login" in the generic tables.
    jq -n --arg scenario "$scenario" --argjson run "$run" --arg died "$died" --argjson rc "$rc" \
      --arg base "$base" --argjson workers "$WORKERS" --argjson accounts "$CAMPAIGN_ACCOUNTS" \
      --argjson rate "$rate_json" \
      --slurpfile c "$dir/campaign.json" \
      --slurpfile s <(cat "$dir/sampler.json" 2>/dev/null || echo null) \
      '($c[0] // {}) as $c
       | (((($c.finished_at // 0) - ($c.created_at // 0)) / 1000)) as $secs
       | ([$c.refreshed, $c.failed, $c.needs_reauth, $c.skipped] | map(. // 0) | add) as $handled
       | {meta: {kind: "campaign", backend: "production", scenario: $scenario, run: $run,
                 load: (if $rate == null then "\($accounts) links, no rate" else "\($accounts) links at \($rate)/s" end),
                 exit_code: $rc, base_url: $base, workers: $workers, accounts: $accounts,
                 rate_per_second: $rate,
                 stack_died: (if $died == "" then null else $died end)},
          campaign: $c,
          loadgen: {measured: {completed: $handled,
                               logins_per_s: (if $secs > 0 then $handled / $secs else null end),
                               errors_total: ($c.failed // 0), latency_ms: {}}},
          sampler: $s[0]}' >"$OUT/runs/$id.json"
    cp "$dir/campaign.log" "$OUT/runs/$id.campaign.log" 2>/dev/null || true
    [ -z "$died" ] || abort_bench "during $id: $died"
    sleep 2
  done
}

# A process of the stack died (on this shared machine, most likely killed
# from outside): the remaining runs would measure nothing. Writes the tables
# of what was measured and exits 1.
abort_bench() {
  log "ABORTED: a process of the stack is gone ($*)"
  NOTES+=("ABORTED: a process of the stack is gone ($*); the run where it happened is left out of the tables, later scenarios were not run")
  write_report || true
  exit 1
}

write_report() {
  if [ "${#NOTES[@]}" -gt 0 ]; then
    jq --argjson notes "$(printf '%s\n' "${NOTES[@]}" | jq -R . | jq -s .)" '.notes = $notes' \
      "$OUT/environment.json" >"$OUT/environment.json.new" && mv "$OUT/environment.json.new" "$OUT/environment.json"
  fi
  log "results in $OUT"
  python3 "$BENCH/report.py" bench "$OUT"
}

# Concurrency for about RATE logins/s in closed loop, from this backend's
# signup-social runs so far.
p99_closed_loop_concurrency() {
  local backend="$1" files
  files=("$OUT"/runs/"$backend"-signup-social-r*.json)
  if [ -f "${files[0]}" ]; then
    jq -s --argjson rate "$RATE" --argjson fallback "$P99_CONCURRENCY" '
      [.[] | select(.loadgen != null) | {c: .meta.concurrency, x: .loadgen.measured.logins_per_s}
           | select(.x > 0)] as $r
      | if ($r | length) == 0 then $fallback
        else ($r | map(.c * $rate / .x) | sort | .[(length / 2 | floor)] | ceil
              | if . > ($r[0].c) then $r[0].c else . end | if . < 1 then 1 else . end)
        end' "${files[@]}"
  else
    echo "$P99_CONCURRENCY"
  fi
}

idle_sample() {
  local name="$1"
  log "idle sample ($IDLE_SECS s, $name)"
  python3 "$BENCH/sampler.py" --out "$OUT/idle-$name.json" --idle "$IDLE_SECS" \
    "${SERVICE_ARGS[@]}" "${SAMPLE_ARGS[@]}" \
    || log "idle sample failed"
}

# ---- 2/3. production stack ---------------------------------------------------
run_production() {
  DB_NAME="socialauth_bench_$SUFFIX"
  QUEUE_PREFIX="bench_$SUFFIX."
  local pg_max
  pg_max="$(pg_setting max_connections)"
  if is_uint "$pg_max" && [ $(((WORKERS + 1) * DB_POOL)) -gt $((pg_max - 20)) ]; then
    log "warning: $((WORKERS + 1)) processes × pool $DB_POOL > max_connections $pg_max - 20"
  fi
  log "creating database $DB_NAME"
  psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -qAtc "CREATE DATABASE $DB_NAME" >/dev/null
  local base_db="${ADMIN_URL%/*}"
  local port key cfg="$TMP/production.toml"
  port="$(free_port)"
  key="$(head -c 32 /dev/urandom | base64)"
  cat >"$cfg" <<EOF
[server]
bind = "127.0.0.1:$port"
# The load generator is one client: no per-client rate.
rate_limit_per_minute = 0

[database]
url = "$base_db/$DB_NAME?sslmode=$PG_TLS"
max_connections = $DB_POOL
login_batch_wait_ms = $LOGIN_BATCH_WAIT_MS

[queue]
amqp_url = "$AMQP_URL"
name_prefix = "$QUEUE_PREFIX"
publish_channels = $PUBLISH_CHANNELS
prefetch = $PREFETCH

[worker]
metrics_bind = "127.0.0.1:0"

[security]
allowed_redirect_uris = ["$REDIRECT_URI"]
encryption_key = "$key"
admin_key = "$ADMIN_KEY"

[refresh]
# The campaign scenarios' links are expired: a scheduled refresh would
# compete with the campaign for them.
schedule_window_secs = 0
campaign_concurrency = $CAMPAIGN_CONCURRENCY
campaign_pages_per_worker = $CAMPAIGN_PAGES
campaign_page_size = $CAMPAIGN_PAGE_SIZE

[telemetry]
log_level = "warn"

$(provider_toml)
EOF
  log "socialauth-api migrate"
  (cd "$TMP" && "$BIN/socialauth-api" --config "$cfg" migrate) >"$TMP/migrate.log" 2>&1 \
    || { cat "$TMP/migrate.log" >&2; die "migrate failed"; }
  QUEUES_USED=1
  start_bg "$TMP" "$TMP/api.log" "$BIN/socialauth-api" --config "$cfg"
  local api_pid=$PID
  local worker_pids=() i
  for i in $(seq 1 "$WORKERS"); do
    start_bg "$TMP" "$TMP/worker-$i.log" "$BIN/socialauth-worker" --config "$cfg"
    worker_pids+=("$PID")
  done
  local base="http://127.0.0.1:$port"
  STACK=("stubidp=$STUB_PID" "socialauth-api=$api_pid")
  STACK_LOGS=("$TMP/stub.log" "$TMP/api.log")
  for i in "${!worker_pids[@]}"; do
    STACK+=("socialauth-worker-$((i + 1))=${worker_pids[$i]}")
    STACK_LOGS+=("$TMP/worker-$((i + 1)).log")
  done
  wait_ready "$base" "$api_pid" "$TMP/api.log"
  # Every worker consumes from the login queue before the load starts.
  local consumers=0 deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    for i in "${!worker_pids[@]}"; do
      alive "${worker_pids[$i]}" || { tail -n 40 "$TMP/worker-$((i + 1)).log" >&2; die "worker $((i + 1)) exited"; }
    done
    consumers="$(rabbitmqctl -q list_queues name consumers 2>/dev/null | awk -v q="${QUEUE_PREFIX}login" '$1 == q {print $2}')"
    [ "${consumers:-0}" -ge "$WORKERS" ] && break
    sleep 1
  done
  [ "${consumers:-0}" -ge "$WORKERS" ] || log "warning: ${consumers:-0} of $WORKERS workers consume ${QUEUE_PREFIX}login"
  log "production stack ready at $base (api $api_pid, workers ${worker_pids[*]}, database $DB_NAME, queues ${QUEUE_PREFIX}*)"
  SAMPLE_ARGS=(--proc "api=$api_pid" --proc "stub=$STUB_PID")
  for i in "${!worker_pids[@]}"; do SAMPLE_ARGS+=(--proc "worker-$((i + 1))=${worker_pids[$i]}"); done
  SERVICE_ARGS=(--postgres --pg-db "$DB_NAME" --rabbitmq)
  idle_sample production
  DB_URL="$base_db/$DB_NAME"
  PROD_CFG="$cfg"
  local s
  for s in "${PROD_RUN[@]}"; do
    case "$s" in
      campaign*) run_campaign "$s" "$base" ;;
      *) run_scenario production "$s" "$base" ;;
    esac
  done
  log "stopping the production stack"
  STACK=("stubidp=$STUB_PID")
  STACK_LOGS=("$TMP/stub.log")
  stop_pids "$api_pid" "${worker_pids[@]}"
  forget_pids "$api_pid" "${worker_pids[@]}"
  SERVICE_ARGS=()
}

# ---- embedded default --------------------------------------------------------
run_embedded() {
  local dir="$TMP/embedded" port cfg
  mkdir -p "$dir"
  port="$(free_port)"
  cfg="$dir/embedded.toml"
  cat >"$cfg" <<EOF
[server]
bind = "127.0.0.1:$port"
# The load generator is one client: no per-client rate.
rate_limit_per_minute = 0

[worker]
concurrency = $EMBEDDED_CONCURRENCY

[security]
allowed_redirect_uris = ["$REDIRECT_URI"]

[telemetry]
log_level = "warn"

$(provider_toml)
EOF
  start_bg "$dir" "$dir/api.log" "$BIN/socialauth-api" --config "$cfg"
  local api_pid=$PID base="http://127.0.0.1:$port"
  STACK=("stubidp=$STUB_PID" "socialauth-api=$api_pid")
  STACK_LOGS=("$TMP/stub.log" "$dir/api.log")
  wait_ready "$base" "$api_pid" "$dir/api.log"
  log "embedded default ready at $base (api $api_pid, SQLite in $dir)"
  SAMPLE_ARGS=(--proc "api=$api_pid" --proc "stub=$STUB_PID")
  SERVICE_ARGS=()
  idle_sample embedded
  local s
  for s in "${EMB_RUN[@]}"; do run_scenario embedded "$s" "$base"; done
  log "stopping the embedded default"
  STACK=("stubidp=$STUB_PID")
  STACK_LOGS=("$TMP/stub.log")
  stop_pids "$api_pid"
  forget_pids "$api_pid"
}

# ---- an implementation that already runs -------------------------------------
run_target() {
  SAMPLE_ARGS=(--proc "stub=$STUB_PID")
  SERVICE_ARGS=()
  case ",$TARGET_SERVICES," in *,postgres,*) SERVICE_ARGS+=(--postgres) ;; esac
  case ",$TARGET_SERVICES," in *,rabbitmq,*) SERVICE_ARGS+=(--rabbitmq) ;; esac
  local spec name pid n=0
  IFS=',' read -r -a specs <<<"$TARGET_PIDS"
  for spec in "${specs[@]}"; do
    [ -n "$spec" ] || continue
    n=$((n + 1))
    if [[ "$spec" == *=* ]]; then name="${spec%%=*}" pid="${spec#*=}"; else name="target-$n" pid="$spec"; fi
    if ! is_uint "$pid" || [ ! -d "/proc/$pid" ]; then die "--target-pids: no process $pid"; fi
    # Names starting with api/worker are summed as those components; any
    # other name is counted as "target".
    case "$name" in api | worker*) ;; *) name="target" ;; esac
    SAMPLE_ARGS+=(--proc "$name=$pid")
  done
  curl -fsS -o /dev/null --max-time 5 "$BASE_URL/readyz" 2>/dev/null \
    || log "note: $BASE_URL/readyz does not answer 200 (not every implementation has it)"
  log "target $BASE_URL; its provider '$PROVIDER' must use $STUB_URL/{authorize,token,userinfo} and allow $REDIRECT_URI"
  NOTES+=("target $BASE_URL: only the processes given by --target-pids ($TARGET_PIDS) are measured as api/workers/target")
  idle_sample target
  local s
  for s in "${PROD_RUN[@]}"; do run_scenario target "$s" "$BASE_URL"; done
}

if [ -n "$BASE_URL" ]; then
  run_target
else
  [ "${#PROD_RUN[@]}" -eq 0 ] || run_production
  [ "${#EMB_RUN[@]}" -eq 0 ] || run_embedded
fi

# ---- 5. tables ----------------------------------------------------------------
write_report
if [ "$LIMITS" = 1 ]; then
  # The stack is stopped; only the idle stub is left until the exit.
  STACK=()
  stop_pids "$STUB_PID"
  forget_pids "$STUB_PID"
  # amqpbench was built with the socialauth-tests binaries above.
  limits_args=(--out "$OUT" --no-build)
  [ "$QUICK" = 0 ] || limits_args+=(--quick)
  echo
  bash "$BENCH/limits.sh" "${limits_args[@]}"
fi
