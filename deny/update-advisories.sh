#!/usr/bin/env bash
# Refreshes the dated snapshot of the RustSec advisory database that
# deny/check.sh gives cargo-deny (CI cannot reach GitHub, where the database
# lives).
#
#   bash deny/update-advisories.sh SOURCE [DEST]
#
# SOURCE: a git repository of https://github.com/rustsec/advisory-db (a clone
#         or a bare mirror); its HEAD is taken, or the commit in $REV.
# DEST:   where the snapshot goes; default $SOCIALAUTH_ADVISORY_DB, else
#         ../shared/advisory-db beside this checkout (where check.sh looks).
#
# Only what cargo-deny reads is kept: crates/ (one Markdown file per
# advisory; the database's rust/ directory is about the toolchain, which
# cargo-deny does not check), the licence files (the data is CC0-1.0, parts
# adapted from GitHub's advisories CC-BY-4.0, as LICENSE.txt says), and a
# SNAPSHOT file naming the commit and its date. About 1,200 small files, 1.3 MB of text.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${1:?usage: bash deny/update-advisories.sh SOURCE [DEST]}"
dest="${2:-${SOCIALAUTH_ADVISORY_DB:-$root/../shared/advisory-db}}"
rev="${REV:-HEAD}"

commit="$(git -C "$src" rev-parse --verify "$rev^{commit}")"
date="$(git -C "$src" show -s --format=%cI "$commit")"
git -C "$src" cat-file -e "$commit:crates" \
  || { echo "$src at $commit has no crates/ directory: not the advisory database?" >&2; exit 1; }

tmp="$(mktemp -d "${dest%/}.new.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
git -C "$src" archive "$commit" crates LICENSE.txt LICENSES | tar -x -C "$tmp"
cat >"$tmp/SNAPSHOT" <<SNAP
source=https://github.com/rustsec/advisory-db
commit=$commit
date=$date
SNAP

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
chmod -R a+rX "$dest"
echo "advisory database snapshot: $(find "$dest/crates" -name '*.md' | wc -l) advisories," \
  "commit $commit of $date, in $dest"
