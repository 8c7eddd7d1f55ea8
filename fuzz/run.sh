#!/usr/bin/env bash
# Runs the fuzz targets for SECONDS in all (default 120), shared evenly:
#
#   bash fuzz/run.sh [SECONDS] [TARGET…]
#
# On stable Rust, with cargo-fuzz (installed from crates.io when missing)
# and libfuzzer-sys, which builds libFuzzer with the system's C++ compiler.
# `--sanitizer none`: the sanitizers are the only part of cargo-fuzz that
# needs nightly (-Zsanitizer); without them cargo-fuzz passes only stable
# flags (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*,
# --cfg fuzzing, -Cdebug-assertions), and the workspace forbids unsafe
# code, which is what the sanitizers check. `--dev`: a debug build, which
# compiles faster than cargo-fuzz's default (optimised, one codegen unit
# per crate); a short run needs coverage more than speed. The build goes
# to fuzz/target, apart from the workspace's target/.
#
# Seeds are in fuzz/seeds/TARGET; what a run finds is kept in
# fuzz/corpus/TARGET (not committed) for the next run. A crash, a panic
# or an input that takes more than 10 s fails the run, its input saved in
# fuzz/artifacts/TARGET; `cargo fuzz run --dev -s none TARGET FILE` replays
# it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

log() { printf '==> %s\n' "$*" >&2; }

TOTAL="${1:-120}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
  TARGETS=(json_body form_body query_string callback oauth1_callback edge_values)
fi
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  log "cargo install cargo-fuzz --version $CARGO_FUZZ_VERSION --locked"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# The workspace's versions of every shared dependency: the targets are
# built with what the tests ran.
cp ../Cargo.lock Cargo.lock

log "cargo fuzz build --dev --sanitizer none"
cargo fuzz build --dev --sanitizer none

EACH=$(( TOTAL / ${#TARGETS[@]} ))
[ "$EACH" -ge 1 ] || EACH=1
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target"
  corpora=("corpus/$target")
  [ -d "seeds/$target" ] && corpora+=("seeds/$target")
  log "fuzz $target for ${EACH}s"
  cargo fuzz run --dev --sanitizer none "$target" "${corpora[@]}" -- \
    -max_total_time="$EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | sed -E '/^#[0-9]+\s+(NEW|REDUCE|pulse)/d' || {
      log "$target failed: see fuzz/artifacts/$target"
      exit 1
    }
done
log "every target ran ${EACH}s without a failure"
