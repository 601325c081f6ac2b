#!/usr/bin/env bash
# Coverage-guided fuzz campaign over capsid's parsers with AFL++ (issue 13), on stable Rust
# through `cargo afl` (crates.io: `cargo install cargo-afl`, which builds its own AFL++).
# Runs each target of crates/capsid-fuzz (mrc, star, csv, shrec, deepfinder_xml, copick_json,
# class_toml, pdb, mmcif) under afl-fuzz for SECONDS, one after another, and prints one line
# per target from AFL++'s fuzzer_stats: executions, executions per second, corpus size, edges
# covered, crashes and hangs. Crashing and hanging inputs are copied to
# crates/capsid-fuzz/tests/fuzz_regressions/<target>/, which `cargo test -p capsid-fuzz`
# replays in CI (commit them with the fix). Exit status 1 if a target crashed.
#
#   bash bench/afl.sh SECONDS [TARGET...]        e.g. bash bench/afl.sh 600   (the issue's goal)
#
# The instrumented build lives in fuzz/afl/target (a workspace of its own, never built by CI);
# the AFL++ output of each target stays in ${AFL_WORK:-/tmp/capsid-afl}/<target>/. A later run
# resumes from that corpus when AFL_RESUME=1. For uninstrumented random mutation (no cargo afl
# needed) see bench/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: bash bench/afl.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mrc star csv shrec deepfinder_xml copick_json class_toml pdb mmcif)
command -v cargo-afl >/dev/null || { echo "bench/afl.sh: cargo-afl is not installed (cargo install cargo-afl)" >&2; exit 2; }
work=${AFL_WORK:-/tmp/capsid-afl}
regress=crates/capsid-fuzz/tests/fuzz_regressions
(cd fuzz/afl && cargo afl build --release -q)
bin=fuzz/afl/target/release/capsid-afl
export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=${AFL_NO_AFFINITY:-1}
printf '%-15s %10s %9s %7s %8s %8s %6s\n' target execs execs/s corpus edges crashes hangs
status=0
for t in "${targets[@]}"; do
  out="$work/$t"
  if [ "${AFL_RESUME:-0}" = 1 ] && [ -d "$out/default/queue" ]; then
    input=-
  else
    rm -rf "$out"; mkdir -p "$out"
    "$bin" --seeds "$out/seeds" "$t"
    input="$out/seeds"
  fi
  # -V: stop after SECONDS; -t: 2 s per input (a parser that takes longer is a hang worth seeing).
  cargo afl fuzz -V "$secs" -t 2000 -i "$input" -o "$out" -- "$bin" "$t" >"$out/afl.log" 2>&1 || {
    echo "bench/afl.sh: afl-fuzz failed on $t; last lines of $out/afl.log:" >&2; tail -5 "$out/afl.log" >&2; status=2; continue; }
  stats="$out/default/fuzzer_stats"
  get() { awk -F': *' -v k="$1" '$1 ~ "^"k" *$" {print $2}' "$stats"; }
  printf '%-15s %10s %9s %7s %8s %8s %6s\n' "$t" "$(get execs_done)" "$(get execs_per_sec)" \
    "$(get corpus_count)" "$(get edges_found)" "$(get saved_crashes)" "$(get saved_hangs)"
  for kind in crashes hangs; do
    for f in "$out/default/$kind"/id:*; do
      [ -e "$f" ] || continue
      mkdir -p "$regress/$t"
      cp "$f" "$regress/$t/afl-$kind-$(sha1sum "$f" | cut -c1-16)"
      [ "$kind" = crashes ] && status=1
    done
  done
done
exit $status
