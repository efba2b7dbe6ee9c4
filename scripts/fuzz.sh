#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time (not part of CI: it needs nightly and
# cargo-fuzz, and finds nothing new in a few seconds).
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh manifest jcs_payload
#
# Inputs start from the seed corpus in fuzz/corpus/TARGET (never modified); what libFuzzer
# finds goes to $FUZZ_WORK/TARGET (default /tmp/mmf-fuzz). A crash is saved under
# fuzz/artifacts/TARGET/ and fails the script; reproduce it with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
work="${FUZZ_WORK:-/tmp/mmf-fuzz}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(admission_review manifest jcs_payload semver_requirement)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz (and rustup toolchain install nightly)" >&2
  exit 1
fi
failed=0
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  echo "== $target: ${seconds}s"
  if ! (cd fuzz && cargo +nightly fuzz run "$target" "$work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=1048576); then
    echo "FAILED: $target (see fuzz/artifacts/$target)" >&2
    failed=1
  fi
done
exit "$failed"
