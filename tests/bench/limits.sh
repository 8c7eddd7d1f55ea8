#!/usr/bin/env bash
# What PostgreSQL and RabbitMQ on this machine can do at most, measured
# without socialauth, so the benchmark's figures (tests/bench/run.sh) can be
# read against them:
#
# - PostgreSQL: pgbench (prepared statements, synchronous_commit as the
#   server has it, normally on) on a scratch database with socialauth's
#   tables (migrations/postgres/0001_init.sql):
#     signup       BEGIN; INSERT users; INSERT social_accounts;
#                  INSERT auth_tokens; COMMIT   at 1, 4, 8, 16, 32 clients
#     code-claim   the worker's one-statement code claim (INSERT INTO
#                  login_codes … ON CONFLICT … DO UPDATE … RETURNING), autocommit
#     login        the worker's one-statement login of a new identity
#                  (user, link, app token, job result; both at 16 clients)
#   TPS, and the CPU time of every postgres process per transaction.
# - RabbitMQ: target/release/amqpbench (tests/src/bin/amqpbench.rs):
#   persistent messages of 600 bytes on a durable queue, publisher confirms,
#   manual acks, publishing and consuming at once: confirm window 1 (each
#   publish waits for its confirm), 256, and 64 publishers of window 1 (what
#   the api does under load: every request waits for its own confirm).
#   msgs/s and the CPU time of beam.smp (and children) per message.
#
#   bash tests/bench/limits.sh [--quick] [--out DIR] [--seconds 20]
#        [--clients "1 4 8 16 32"] [--no-build]
#
# --quick: 5 s per pgbench run, a tenth of the messages. Writes DIR/limits/
# (raw JSON and logs), DIR/limits.json and DIR/limits.md (DIR defaults to
# docs/bench-results/<timestamp>/, or use the folder of a run.sh run), and
# prints the Markdown. The scratch database and the queues are removed on
# exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$ROOT/tests/bench"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
ADMIN_URL="${SOCIALAUTH_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
AMQP_URL="${SOCIALAUTH_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'limits.sh: %s\n' "$*" >&2
  exit 1
}

QUICK=0
OUT=""
SECONDS_PER_RUN=""
CLIENTS="1 4 8 16 32"
BUILD=1
need() { [ "$#" -ge 2 ] || die "$1 needs a value"; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) need "$@"; OUT="$2"; shift ;;
    --seconds) need "$@"; SECONDS_PER_RUN="$2"; shift ;;
    --clients) need "$@"; CLIENTS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h | --help)
      sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    *) die "unknown argument $1" ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
  MSGS_W1=3000 MSGS_W256=30000 MSGS_API=10000
else
  SECONDS_PER_RUN="${SECONDS_PER_RUN:-20}"
  MSGS_W1=30000 MSGS_W256=300000 MSGS_API=100000
fi
if ! [[ "$SECONDS_PER_RUN" =~ ^[1-9][0-9]*$ ]]; then die "--seconds must be a positive whole number"; fi
for c in $CLIENTS; do
  if ! [[ "$c" =~ ^[1-9][0-9]*$ ]]; then die "--clients: '$c' is not a positive whole number"; fi
done

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-$ROOT/docs/bench-results/$STAMP}"
RAW="$OUT/limits"
mkdir -p "$RAW"
OUT="$(cd "$OUT" && pwd)"
RAW="$OUT/limits"

SUFFIX="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
DB_NAME=""
QUEUES=()
STARTED=()
TMP="$(mktemp -d /tmp/socialauth-limits.XXXXXX)"

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local pid q
  for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null; done
  for q in "${QUEUES[@]}"; do
    # amqpbench deletes its queue itself; this is for an interrupted run.
    rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1
  done
  if [ -n "$DB_NAME" ]; then
    psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 \
      || log "could not drop database $DB_NAME"
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs sampler.py in the background and waits (signals are handled at once).
RC=0
sampled() {
  RC=0
  python3 "$BENCH/sampler.py" "$@" &
  local pid=$!
  STARTED+=("$pid")
  wait "$pid" || RC=$?
  local keep=() p
  for p in "${STARTED[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}

cd "$ROOT"
if [ "$BUILD" = 1 ]; then
  log "cargo build --release -p socialauth-tests --bin amqpbench"
  cargo build --release -p socialauth-tests --bin amqpbench
fi
[ -x "$BIN/amqpbench" ] || die "$BIN/amqpbench is missing"
command -v pgbench >/dev/null || die "pgbench is missing (apt-get install postgresql-contrib or postgresql-client)"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
bash "$ROOT/tests/run.sh" --services-only

pg_setting() { psql "$ADMIN_URL" -qAtc "SHOW $1" 2>/dev/null || echo "?"; }
log "idle sample (5 s)"
sampled --out "$RAW/idle.json" --idle 5 --postgres --rabbitmq
jq -n --arg started "$STAMP" \
  --arg cpu "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)" \
  --arg nproc "$(nproc)" \
  --arg pgv "$(pg_setting server_version)" \
  --arg sync "$(pg_setting synchronous_commit)" \
  --arg fsync "$(pg_setting fsync)" \
  --arg wsm "$(pg_setting wal_sync_method)" \
  --arg sb "$(pg_setting shared_buffers)" \
  --arg mqv "$(rabbitmqctl -q version 2>/dev/null || echo '?')" \
  --arg pgbench "$(pgbench --version)" \
  --argjson seconds "$SECONDS_PER_RUN" \
  --slurpfile idle "$RAW/idle.json" \
  '{started_utc: $started, cpu_model: $cpu, nproc: ($nproc|tonumber), postgres_version: $pgv,
    pg_synchronous_commit: $sync, pg_fsync: $fsync, pg_wal_sync_method: $wsm, pg_shared_buffers: $sb,
    rabbitmq_version: $mqv, pgbench: $pgbench, pgbench_seconds: $seconds,
    idle_busy_pct: $idle[0].machine.busy_pct}' >"$RAW/environment.json"

# ---- PostgreSQL ----------------------------------------------------------------
DB_NAME="socialauth_limits_$SUFFIX"
log "scratch database $DB_NAME with migrations/postgres/0001_init.sql"
psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -qAtc "CREATE DATABASE $DB_NAME" >/dev/null
DB_URL="${ADMIN_URL%/*}/$DB_NAME"
psql "$DB_URL" -v ON_ERROR_STOP=1 -q -f "$ROOT/migrations/postgres/0001_init.sql" >/dev/null
psql "$DB_URL" -v ON_ERROR_STOP=1 -qc "CREATE SEQUENCE bench_seq" >/dev/null

# A signup as the worker writes it: the user, the link with the provider's
# profile and sealed tokens, the app token's hash. Unique values: the
# client id and a sequence; the user id for the rows that follow.
cat >"$TMP/signup.sql" <<'EOF'
\set r random(1, 2147483647)
BEGIN;
INSERT INTO users (username, email, email_normalized, first_name, last_name, referral_code, created_at)
  SELECT 'u' || s.n, 'u' || s.n || '@example.com', 'u' || s.n || '@example.com', 'Bench', 'User',
         upper(substr(md5(s.n || :r), 1, 10)), (extract(epoch from clock_timestamp()) * 1000)::bigint
  FROM (SELECT :client_id || '_' || nextval('bench_seq') AS n) s
  RETURNING id AS user_id \gset
INSERT INTO social_accounts (user_id, provider, uid, email, extra_data, token_key_id, access_token_enc,
                             refresh_token_enc, expires_at, created_at, updated_at)
  VALUES (:user_id, 'stub', 'uid-' || :user_id, 'u' || :user_id || '@example.com',
          '{"sub":"uid-' || :user_id || '","email":"u' || :user_id || '@example.com","email_verified":' || 'true,"name":"Bench User","given_name":"Bench","family_name":"User","picture":"https://example.com/avatar/' || :user_id || '.png"}',
          'k1', encode(sha256(('a' || :user_id || :r)::bytea), 'base64') || encode(sha256(('b' || :user_id)::bytea), 'base64'),
          encode(sha256(('c' || :user_id || :r)::bytea), 'base64') || encode(sha256(('d' || :user_id)::bytea), 'base64'),
          (extract(epoch from clock_timestamp()) * 1000)::bigint + 3600000,
          (extract(epoch from clock_timestamp()) * 1000)::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint);
INSERT INTO auth_tokens (token_hash, user_id, created_at)
  VALUES (encode(sha256(('t' || :user_id || '_' || :r)::bytea), 'hex'), :user_id,
          (extract(epoch from clock_timestamp()) * 1000)::bigint);
COMMIT;
EOF

# The worker's code claim (common/src/store/login_flows.rs CLAIM_LOGIN_CODE),
# a new code each time.
cat >"$TMP/code-claim.sql" <<'EOF'
\set r random(1, 2147483647)
INSERT INTO login_codes (provider, code_hash, job_id, request_hash, created_at, expires_at)
  VALUES ('stub', encode(sha256(('code' || :client_id || '_' || nextval('bench_seq') || '_' || :r)::bytea), 'hex'),
          'job-' || :client_id || '-' || :r, encode(sha256(('req' || :r)::bytea), 'hex'),
          (extract(epoch from clock_timestamp()) * 1000)::bigint,
          (extract(epoch from clock_timestamp()) * 1000)::bigint + 600000)
  ON CONFLICT (provider, code_hash) DO UPDATE
  SET job_id = excluded.job_id, request_hash = excluded.request_hash,
      created_at = excluded.created_at, expires_at = excluded.expires_at
  WHERE login_codes.expires_at <= excluded.created_at
  RETURNING job_id;
EOF

# The worker's login statement for a new identity (common/src/store/logins.rs
# LOG_IN_PG): one autocommit statement that looks up the link, creates the
# user, the link and the app token and stores the job's result.
cat >"$TMP/login.sql" <<'EOF'
\set r random(1, 2147483647)
\set n random(1, 9000000000000000000)
WITH old AS (SELECT users.id, users.username, users.email, users.first_name, users.last_name, users.is_active,
                    users.referral_code, users.referred_by, users.created_at
               FROM social_accounts s JOIN users ON users.id = s.user_id
              WHERE s.provider = 'stub' AND s.uid = 'uid-' || :n::text),
     new AS (
       INSERT INTO users (username, email, email_normalized, first_name, last_name, referral_code, referred_by, created_at)
       SELECT 'u' || :n::text, 'u' || :n::text || '@example.com', 'u' || :n::text || '@example.com', 'Bench', 'User',
              upper(substr(md5(:n::text || :r::text), 1, 10)), (SELECT r.id FROM users r WHERE r.referral_code = NULL), (extract(epoch from clock_timestamp()) * 1000)::bigint
       WHERE true AND NOT EXISTS (SELECT 1 FROM old)
       RETURNING id, username, email, first_name, last_name, is_active, referral_code, referred_by, created_at),
     link AS (
       INSERT INTO social_accounts (user_id, provider, uid, email, extra_data, token_key_id, access_token_enc,
                                    refresh_token_enc, expires_at, created_at, updated_at)
       SELECT new.id, 'stub', 'uid-' || :n::text, 'u' || :n::text || '@example.com',
              '{"sub":"uid-' || :n::text || '","email":"u' || :n::text || '@example.com","email_verified": true,"name":"Bench User","given_name":"Bench","family_name":"User"}',
              'k1', encode(sha256(('a' || :n::text || :r::text)::bytea), 'base64') || encode(sha256(('b' || :n::text)::bytea), 'base64'),
              encode(sha256(('c' || :n::text || :r::text)::bytea), 'base64') || encode(sha256(('d' || :n::text)::bytea), 'base64'),
              (extract(epoch from clock_timestamp()) * 1000)::bigint + 3600000, (extract(epoch from clock_timestamp()) * 1000)::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint FROM new),
     u AS (SELECT old.*, false AS is_new FROM old UNION ALL SELECT new.*, true FROM new),
     t AS (
       INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at)
       SELECT encode(sha256(('t' || :n::text || '_' || :r::text)::bytea), 'hex'), u.id, (extract(epoch from clock_timestamp()) * 1000)::bigint, NULL FROM u WHERE u.is_active),
     j AS (
       INSERT INTO jobs (id, kind, status, result, attempts, created_at, updated_at)
       SELECT 'job-' || :n::text, 'login', 'succeeded',
              json_build_object('status', 'login', 'is_new', u.is_new, 'user',
                json_build_object('id', u.id, 'username', u.username, 'email', u.email,
                  'first_name', u.first_name, 'last_name', u.last_name, 'is_active', u.is_active,
                  'referral_code', u.referral_code, 'referred_by', u.referred_by,
                  'created_at', u.created_at))::text,
              1, (extract(epoch from clock_timestamp()) * 1000)::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint FROM u WHERE u.is_active
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, result = excluded.result,
           attempts = excluded.attempts, updated_at = excluded.updated_at)
SELECT id, username, email, first_name, last_name, is_active, referral_code, referred_by, created_at, is_new FROM u;
EOF

ORDER=0
pgbench_run() {
  local script="$1" clients="$2"
  local name="pg-$script-c$clients" threads=$(($(nproc) < clients ? $(nproc) : clients))
  ORDER=$((ORDER + 1))
  psql "$DB_URL" -qAtc "CHECKPOINT" >/dev/null 2>&1 || true
  log "$name: pgbench -M prepared -c $clients -j $threads -T $SECONDS_PER_RUN -f $script.sql"
  sampled --out "$TMP/$name.sampler.json" --log "$RAW/$name.log" --child-name pgbench \
    --interval 0.25 --postgres --pg-db "$DB_NAME" --window "$SECONDS_PER_RUN" --timeout "$((SECONDS_PER_RUN + 120))" -- \
    pgbench -n -M prepared -c "$clients" -j "$threads" -T "$SECONDS_PER_RUN" \
    -f "$TMP/$script.sql" "$DB_URL"
  local tx tps lat
  tx="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$RAW/$name.log")"
  tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$RAW/$name.log" | head -n 1)"
  lat="$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$RAW/$name.log")"
  grep -E '^(number of transactions actually|number of failed|latency average|tps)' "$RAW/$name.log" | sed 's/^/    /' >&2 || true
  [ "$RC" = 0 ] || { log "$name: pgbench exited $RC"; tail -n 5 "$RAW/$name.log" >&2; }
  jq -n --arg name "$name" --arg script "$script" --argjson clients "$clients" \
    --argjson seconds "$SECONDS_PER_RUN" --argjson order "$ORDER" --argjson rc "$RC" \
    --arg tx "${tx:-}" --arg tps "${tps:-}" --arg lat "${lat:-}" \
    --slurpfile s "$TMP/$name.sampler.json" \
    '{kind: "pgbench", name: $name, script: $script, clients: $clients, seconds: $seconds, order: $order,
      exit_code: $rc, transactions: ($tx | tonumber? // null), tps: ($tps | tonumber? // null),
      latency_ms: ($lat | tonumber? // null), sampler: $s[0]}' >"$RAW/$name.json"
}

for c in $CLIENTS; do pgbench_run signup "$c"; done
pgbench_run code-claim 16
pgbench_run login 16
psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null && DB_NAME=""

# ---- RabbitMQ ------------------------------------------------------------------
amqp_run() {
  local name="$1"
  shift
  local queue="amqpbench.limits.$SUFFIX.$name"
  QUEUES+=("$queue")
  ORDER=$((ORDER + 1))
  log "$name: amqpbench $*"
  sampled --out "$TMP/$name.sampler.json" --log "$RAW/$name.log" --child-name amqpbench \
    --rabbitmq --timeout 900 -- \
    "$BIN/amqpbench" --url "$AMQP_URL" --queue "$queue" --size 600 --json "$TMP/$name.result.json" "$@"
  grep '^amqpbench:' "$RAW/$name.log" | sed 's/^/    /' >&2 || true
  [ "$RC" = 0 ] || { log "$name: amqpbench exited $RC"; tail -n 5 "$RAW/$name.log" >&2; }
  jq -n --arg name "$name" --argjson order "$ORDER" --argjson rc "$RC" \
    --slurpfile r <(cat "$TMP/$name.result.json" 2>/dev/null || echo null) \
    --slurpfile s "$TMP/$name.sampler.json" \
    '{kind: "amqpbench", name: $name, order: $order, exit_code: $rc, result: $r[0], sampler: $s[0]}' \
    >"$RAW/$name.json"
}

amqp_run mq-window-1 --messages "$MSGS_W1" --confirm-window 1 --publishers 1 --consumers 1 --prefetch 64
amqp_run mq-window-256 --messages "$MSGS_W256" --confirm-window 256 --publishers 1 --consumers 1 --prefetch 64
amqp_run mq-64-publishers-window-1 --messages "$MSGS_API" --confirm-window 1 --publishers 64 --consumers 2 --prefetch 64

log "results in $OUT"
python3 "$BENCH/report.py" limits "$OUT"
