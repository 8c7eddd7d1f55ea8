#!/usr/bin/env bash
# cargo-deny over the workspace, as configured in deny.toml: advisories,
# licences, bans (duplicate versions included) and sources. CI runs it after
# clippy; run it the same way: `bash deny/check.sh`.
#
# The RustSec advisory database lives on GitHub, which CI and the developers'
# machines do not reach. It comes from a dated snapshot (made by
# deny/update-advisories.sh), looked for at $SOCIALAUTH_ADVISORY_DB, else at
# ../shared/advisory-db beside this checkout. Each run copies it into a
# throwaway git repository where deny.toml's db-path expects it (cargo-deny
# reads the database from a git checkout) and runs cargo-deny with --frozen
# (offline, Cargo.lock as committed).
# Without a snapshot the advisories check is skipped with a warning and the
# other three run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*" >&2; }

# deny.toml is written for this version; the database directory below is
# where it keeps deny.toml's db-urls entry.
version=0.20.2
db_url=https://github.com/rustsec/advisory-db
db_dir=target/advisory-dbs/advisory-db-3157b0e258782691
max_age_days=90

start=$SECONDS

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $version" ]; then
  # Into ~/.cargo/bin, which later runs on the same machine reuse.
  log "cargo install cargo-deny --version $version --locked (about 6 minutes on 2 cores, once per machine)"
  cargo install cargo-deny --version "$version" --locked --quiet
  log "cargo-deny installed in $((SECONDS - start)) s"
fi

# cargo-deny asks cargo for the whole graph offline, every platform's crates
# included (even those deny.toml's targets then leave out).
cargo fetch --locked --quiet

snapshot="${SOCIALAUTH_ADVISORY_DB:-../shared/advisory-db}"
checks=(advisories bans licenses sources)
if [ -d "$snapshot/crates" ]; then
  commit=unknown date=unknown
  if [ -f "$snapshot/SNAPSHOT" ]; then
    commit="$(sed -n 's/^commit=//p' "$snapshot/SNAPSHOT")"
    date="$(sed -n 's/^date=//p' "$snapshot/SNAPSHOT")"
  fi
  rm -rf target/advisory-dbs
  mkdir -p "$db_dir"
  cp -R "$snapshot/crates" "$db_dir/crates"
  chmod -R u+w "$db_dir"
  git -C "$db_dir" init -q -b main
  git -C "$db_dir" remote add origin "$db_url"
  git -C "$db_dir" add crates
  GIT_AUTHOR_DATE="${date/unknown/}" GIT_COMMITTER_DATE="${date/unknown/}" \
    git -C "$db_dir" -c user.name=snapshot -c user.email=snapshot@localhost \
    commit -q -m "advisory-db snapshot $commit"
  count="$(find "$db_dir/crates" -name '*.md' | wc -l)"
  age=""
  if epoch="$(date -d "$date" +%s 2>/dev/null)"; then
    age=$(( ($(date +%s) - epoch) / 86400 ))
  fi
  log "advisory database: snapshot of $db_url at ${commit:0:12}, dated $date${age:+ ($age days old)}, $count advisories"
  if [ -n "$age" ] && [ "$age" -gt "$max_age_days" ]; then
    log "WARNING: the advisory snapshot is older than $max_age_days days: refresh it (deny/update-advisories.sh)"
  fi
else
  checks=(bans licenses sources)
  log "WARNING: advisories NOT checked: no advisory database snapshot at $snapshot (see deny/update-advisories.sh)"
fi

log "cargo deny --frozen check ${checks[*]}"
cargo deny --frozen --color never check --show-stats "${checks[@]}"
log "cargo deny passed in $((SECONDS - start)) s"
