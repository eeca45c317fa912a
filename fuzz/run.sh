#!/usr/bin/env bash
# Fuzzes cocreate's inbound path with AFL++ through afl.rs (cargo-afl), on
# the stable toolchain.
#
#   fuzz/run.sh SECONDS [OUTDIR]          (FUZZ_PROFILE=dev: an unoptimised build)
#
# Seeds: every message of tests/fixtures/inbound and fuzz/regressions, and
# every file of ../shared/corpora when it is beside the checkout (used in
# place, never copied into the repository). Findings are left in
# OUTDIR/default/crashes and hangs: copy each into fuzz/regressions/ (the
# test suite runs them all) and fix what it shows. Needs cargo-afl
# (`cargo install cargo-afl`; it builds AFL++ on first use).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?how many seconds to fuzz}
out=${2:-target/afl-out}

seeds=target/afl-seeds
rm -rf "$seeds"
mkdir -p "$seeds"
n=0
add() { n=$((n + 1)); cp "$1" "$seeds/$(printf '%04d' "$n")"; }
for f in ../tests/fixtures/inbound/*.eml regressions/*; do
  [ -f "$f" ] && [ "$(basename "$f")" != README.md ] && add "$f"
done
if [ -d ../../shared/corpora ]; then
  while IFS= read -r -d '' f; do
    case "$(basename "$f")" in LICENSE | COPYING | README.md) continue ;; esac
    add "$f"
  done < <(find ../../shared/corpora -type f -size -64k -print0 | sort -z)
fi
echo "seeds: $n files"

# FUZZ_PROFILE=dev builds without optimisation: slower to run, much
# quicker to build (CI's smoke run). cargo-afl sets opt-level 3 in
# RUSTFLAGS whatever the profile says; AFL_OPT_LEVEL is how to lower it
# (6 minutes to build on 2 cores instead of 15).
if [ "${FUZZ_PROFILE:-release}" = dev ]; then
  AFL_OPT_LEVEL=0 cargo afl build --bin inbound
  binary=target/debug/inbound
else
  cargo afl build --release --bin inbound
  binary=target/release/inbound
fi
# Machines without a core-dump helper or CPU frequency control are fine for
# a fuzzing run; AFL++ otherwise refuses to start on them.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
rm -rf "$out"
# Each fuzzing process keeps its own small database here.
export COCREATE_TEST_FUZZ_DB_DIR=${TMPDIR:-/tmp}/cocreate-fuzz-dbs
rm -rf "$COCREATE_TEST_FUZZ_DB_DIR"
mkdir -p "$COCREATE_TEST_FUZZ_DB_DIR"
trap 'rm -rf "$COCREATE_TEST_FUZZ_DB_DIR"' EXIT
cargo afl fuzz -i "$seeds" -o "$out" -V "$seconds" -t 5000 "$binary"
stats="$out/default/fuzzer_stats"
grep -E '^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg|edges_found|total_edges) ' "$stats"
crashes=$(find "$out/default/crashes" "$out/default/hangs" -type f ! -name README.txt | wc -l)
if [ "$crashes" -gt 0 ]; then
  echo "AFL++ found $crashes crashing or hanging inputs in $out/default/{crashes,hangs}" >&2
  exit 1
fi
