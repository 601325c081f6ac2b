#!/usr/bin/env bash
# Fuzz campaign over capsid's parsers (issue 13), on stable Rust: runs each target of
# crates/capsid-fuzz (mrc, star, csv, shrec, deepfinder_xml, copick_json, class_toml, pdb, mmcif)
# for SECONDS and prints one line per target: executions, executions per second, crashes and
# panics caught around third-party parsers. Crashing inputs are saved under
# crates/capsid-fuzz/tests/fuzz_regressions/<target>/, which `cargo test -p capsid-fuzz` replays
# (commit them with the fix).
#
#   bash bench/fuzz.sh SECONDS [TARGET...]      e.g. bash bench/fuzz.sh 600   (the issue's goal)
#
# CAPSID_FUZZ_SEED=N makes a run reproducible (default: the clock). Exit status 1 if a target
# crashed. The mutations are random (no coverage feedback); bench/afl.sh runs the same targets
# coverage-guided under AFL++ (cargo afl).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: bash bench/fuzz.sh SECONDS [TARGET...]}
shift
cargo build --release -q -p capsid-fuzz --bin capsid-fuzz
exec target/release/capsid-fuzz "$secs" "$@"
