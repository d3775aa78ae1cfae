#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ (cargo-fuzz layout) with the nightly toolchain and runs
# them with libFuzzer. See fuzz/README.md for what each target feeds.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]   fuzz TARGET (default: all, one after the other)
#                                            for SECONDS each (default 60)
#   scripts/fuzz.sh TARGET FILE...           replay FILE(s) (an artifact, a reproducer) once
#   scripts/fuzz.sh build                    build the targets only
#
# Prints, per target, the executions, the time and the executions per second. Exits non-zero
# when a target finds something (crash, abort, timeout, out-of-memory, C2RS_PANIC, an
# unexpected C2RS_INTERNAL); the input is left in fuzz/artifacts/TARGET/ and the log in
# fuzz/logs/TARGET.log. The corpus grows in fuzz/corpus/TARGET/ (not committed); the seeds are
# regenerated on every run, into the run's own scratch directory (so that several runs of
# different targets can go side by side), from tests/data/golden, tests/data/hostile and the
# registered operators.
#
# The build calls `cargo +nightly build` with the flags `cargo fuzz build -a` would use
# (SanitizerCoverage for libFuzzer, AddressSanitizer, debug assertions, so that an arithmetic
# overflow on a size is a panic and thus a finding), so CI needs no cargo-fuzz; `cargo fuzz`
# works on the same tree for tmin, cmin and coverage.
#
# Environment: FUZZ_HOSTILE_SEEDS=0 leaves the hostile reproducers out of the seeds;
# FUZZ_ARGS adds libFuzzer options (e.g. "-jobs=2" or "-use_value_profile=1").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

TARGETS=(tensor_proto minidb_format lmdb_format leveldb_format memonger db_minidb db_lmdb db_leveldb operator plan)

target=${1:-all}
shift || true
replay=()
seconds=60
if [ $# -gt 0 ]; then
  if [[ $1 =~ ^[0-9]+$ ]]; then
    seconds=$1
  else
    replay=("$@")
  fi
fi

if [ "$target" = all ]; then
  selected=("${TARGETS[@]}")
elif [ "$target" = build ]; then
  selected=()
elif [[ " ${TARGETS[*]} " == *" $target "* ]]; then
  selected=("$target")
else
  echo "fuzz.sh: unknown target '$target' (targets: ${TARGETS[*]})" >&2
  exit 2
fi
if [ ${#replay[@]} -gt 0 ] && [ ${#selected[@]} -ne 1 ]; then
  echo "fuzz.sh: name one target to replay files" >&2
  exit 2
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: the fuzz targets need a nightly toolchain (cargo +nightly), none found" >&2
  exit 2
fi

triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=$root/fuzz/target/$triple/release

echo "== fuzz build (cargo +nightly, $triple, AddressSanitizer + SanitizerCoverage)"
build_start=$(date +%s)
RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
--cfg fuzzing -Zsanitizer=address -Cdebug-assertions -Ccodegen-units=1" \
  cargo +nightly build --manifest-path fuzz/Cargo.toml --target "$triple" --release --bins
echo "fuzz build: $(($(date +%s) - build_start)) s"
if [ "$target" = build ]; then
  exit 0
fi

# Scratch files of the targets (DB files, the operator target's workspace root): tmpfs when
# there is one, removed on exit whatever happens.
scratch_parent=/tmp
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  scratch_parent=/dev/shm
fi
scratch=$(mktemp -d "$scratch_parent/caffe2rs-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch

# Limits (fuzz/README.md): 2 GiB of RSS; one allocation above 64 MiB is refused inside the
# binaries (__asan_default_options), so -malloc_limit_mb only backs that up; an input that
# runs 25 s is a hang (the operator target's watchdog unblocks queue waits after 50 ms).
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=25)

if [ ${#replay[@]} -gt 0 ]; then
  t=${selected[0]}
  echo "== replay ${#replay[@]} file(s) through $t"
  "$bin_dir/$t" "${limits[@]}" "${replay[@]}"
  exit $?
fi

seeds=$scratch/seeds
seedgen_args=("$seeds")
if [ "${FUZZ_HOSTILE_SEEDS:-1}" = 0 ]; then
  seedgen_args+=(--no-hostile)
fi
"$bin_dir/seedgen" "${seedgen_args[@]}"

mkdir -p fuzz/logs
failed=()
summary=()
for t in "${selected[@]}"; do
  corpus=$root/fuzz/corpus/$t
  artifacts=$root/fuzz/artifacts/$t
  log=$root/fuzz/logs/$t.log
  mkdir -p "$corpus" "$artifacts"
  extra=()
  if [ "$t" = operator ] || [ "$t" = plan ]; then
    extra+=(-dict="$seeds/operator.dict")
  fi
  echo "== fuzz $t for $seconds s (log: fuzz/logs/$t.log)"
  start=$(date +%s)
  set +e
  # shellcheck disable=SC2086
  "$bin_dir/$t" "${limits[@]}" "${extra[@]}" -max_total_time="$seconds" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
    "$corpus" "$seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  if [ -z "$execs" ]; then
    # No final stats (the run died): the last status line has the count.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#')
    execs=${execs:-0}
    rate=$((execs / (elapsed > 0 ? elapsed : 1)))
  fi
  line=$(printf '%-13s %12s execs %6s s %8s exec/s' "$t" "$execs" "$elapsed" "$rate")
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    line="$line  FINDING (exit $rc)"
    echo "-- $t: finding (exit $rc); end of the log:"
    grep -E 'FINDING|ERROR|panicked|Test unit written|SUMMARY' "$log" | head -n 20 || true
    tail -n 30 "$log"
  fi
  summary+=("$line")
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/logs/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
