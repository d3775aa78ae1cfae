#!/usr/bin/env bash
# Mutation testing of the core modules with cargo-mutants (issue 16). Not part of CI: a pass
# over the whole core list takes hours on two cores. Run it on the files you change.
#
#   scripts/mutants.sh [FILE...]      mutate FILE(s) (default: the core list below) and print
#                                     caught / missed / unviable / timeout per file
#   scripts/mutants.sh --list [FILE...]  print each file's group and test targets, run nothing
#
# Files are grouped by the test targets that reach them (`targets_for`); each group is one
# cargo-mutants run that builds and runs only those targets (`--lib` plus a few
# `--test X`), never the whole suite: an integration test target costs a link per mutant
# and tests/leveldb.rs alone runs for half a minute. Results stay in
# target/mutants-out/<group>/mutants.out (missed.txt, caught.txt, timeout.txt,
# unviable.txt, one log per mutant); docs/mutants.md records the survivors judged equivalent.
#
# Cost per mutant: the `mutants` profile (Cargo.toml: the test profile without debug info)
# and a target dir kept between runs (target/mutants: dependencies are built once;
# cargo-mutants reuses one scratch copy of the tree per job, so each mutant is an
# incremental rebuild of this crate). On the shared two-core machine at load 4-7 a mutant
# costs about 10 s of build plus its targets' test time (3-8 s); a hang costs TIMEOUT.
#
# Environment:
#   JOBS=1         cargo-mutants jobs (-j); 2 only when `uptime` shows an idle machine
#   TIMEOUT=30     seconds a mutant's tests may run before it counts as a timeout
#   BASELINE=run   test the unmutated tree first, and stop if it fails. Keep it: with `skip`,
#                  a test that fails on every tree makes every mutant "caught" (see below)
#   ITERATE=0      1: skip mutants caught or unviable in the previous run of the group
#                  (cargo-mutants --iterate), retesting only the rest
#   MUTANTS_ARGS   more cargo-mutants options, e.g. "-F sweep_best_fit" or "--shard 1/2"
#   MUTANTS_TARGET_DIR  cargo's target dir (default target/mutants); give a second run that
#                  goes beside a first one (on other groups) a dir of its own. Two such runs
#                  side by side, not JOBS=2: two jobs in one target dir invalidate each other's
#                  incremental builds (60-130 s per mutant instead of 5-15 s)
#   MUTANTS_TESTS  integration test targets to run instead of the group's (`--lib` always
#                  runs), e.g. "memonger_dag memonger_upstream" to leave out the 20-s
#                  memonger_generated. A quick pass: its "caught" stand, but check each of its
#                  survivors against the whole suite by hand before calling it a gap
set -euo pipefail
# A mutant can make a test allocate without bound (one took 23 GB and brought the OOM killer
# onto the machine's other work): cap every process's address space; such a mutant then
# fails its tests (caught). The cap is on the data segment (RLIMIT_DATA: heap and private
# writable mappings), not on address space: LMDB reserves its whole map size as a shared file
# mapping, and under an address-space cap (`ulimit -v`, used from 295833b to 5812d49) eight
# LMDB unit tests failed on every tree, so with BASELINE=skip every mutant of every group
# counted as caught. MUTANTS_DATA_KB overrides the cap (default 12 GiB).
ulimit -S -d "${MUTANTS_DATA_KB:-12582912}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

CORE=(
  src/memonger/arena.rs src/memonger/naming.rs src/memonger/planner.rs
  src/memonger/liveness.rs src/memonger/verify.rs src/memonger/fast.rs src/memonger/dag.rs
  src/queue/blobs_queue.rs src/queue/rebatching.rs src/queue/ring.rs src/queue/deque.rs
  src/queue/slot.rs src/queue/stats.rs src/queue/waker.rs
  src/tensor/serialize.rs src/tensor/storage.rs src/tensor/dlpack.rs
  src/db/minidb.rs src/db/mapping.rs
  src/db/lmdb/mod.rs src/db/lmdb/format.rs src/db/lmdb/walk.rs src/db/lmdb/cursor.rs
  src/db/lmdb/writer.rs
  src/db/batch.rs src/db/scan.rs src/db/reader.rs src/db/prefetch.rs
  src/ops/queue_ops.rs src/ops/load_save_ops.rs src/ops/db_ops.rs
  src/workspace/workspace.rs src/workspace/blob_map.rs
)

# The group of FILE and the test targets that reach it (besides the unit tests, --lib).
# Chosen by what each tests/*.rs drives; tests/leveldb.rs (30 s) only where LevelDB code is.
targets_for() {
  case $1 in
    src/memonger/*)
      echo "memonger memonger_dag memonger_example_data memonger_generated memonger_golden memonger_upstream memonger_utils" ;;
    src/queue/*)
      echo "queue queue_ops plans" ;;
    src/ops/queue_ops.rs)
      echo "queue_ops queue_ops plans" ;;
    src/tensor/serialize.rs)
      echo "serialize golden_tensors golden_db load_save db_ops hostile_memory" ;;
    src/tensor/storage.rs | src/tensor/dlpack.rs)
      echo "storage storage_memory workspace_blobs queue_ops golden_tensors cuda_tensors size_limits hostile_memory" ;;
    src/db/minidb.rs | src/db/mapping.rs)
      echo "minidb db_ops golden_db load_save size_limits hostile_memory hostile_replay" ;;
    src/db/lmdb/*)
      echo "lmdb lmdb_damaged golden_db db_ops hostile_replay" ;;
    src/db/batch.rs | src/db/scan.rs)
      echo "batch golden_db db_ops queue_ops size_limits hostile_memory" ;;
    src/db/reader.rs | src/db/prefetch.rs)
      echo "reader golden_db db_ops queue_ops load_save" ;;
    src/ops/load_save_ops.rs)
      echo "load_save load_save size_limits utility_ops names" ;;
    src/ops/db_ops.rs)
      echo "db_ops db_ops lmdb_damaged size_limits" ;;
    src/workspace/*)
      echo "workspace workspace_blobs workspace_ops plans names utility_ops queue_ops" ;;
    *)
      echo "all $(cd tests && ls ./*.rs | sed 's|^\./||; s|\.rs$||' | grep -vx leveldb | tr '\n' ' ')" ;;
  esac
}

list_only=0
if [ "${1:-}" = "--list" ]; then
  list_only=1
  shift
fi
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("${CORE[@]}")

# Group the files, keeping the order in which groups first appear.
declare -A group_files group_targets
order=()
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "no such file: $f" >&2; exit 2; }
  read -r group targets <<<"$(targets_for "$f")"
  if [ -z "${group_files[$group]+x}" ]; then
    order+=("$group")
    group_files[$group]=""
    group_targets[$group]=${MUTANTS_TESTS-$targets}
  fi
  group_files[$group]+=" $f"
done

if [ $list_only = 1 ]; then
  for g in "${order[@]}"; do
    echo "$g:${group_files[$g]}  <- --lib ${group_targets[$g]}"
  done
  exit 0
fi

export CARGO_TARGET_DIR=${MUTANTS_TARGET_DIR:-$root/target/mutants}
jobs=${JOBS:-1}
timeout=${TIMEOUT:-30}
baseline=${BASELINE:-run}

# Per-file counts from a group's mutants.out. With ITERATE=1 the mutants caught in earlier
# runs are in previously_caught.txt and the unviable ones are carried in unviable.all.
count() { # FILE LIST...
  local f=$1 n=0 l
  shift
  for l in "$@"; do
    [ -f "$l" ] && n=$((n + $(grep -c "^$f:" "$l" || true)))
  done
  echo $n
}

# Each cargo-mutants run builds in a fresh scratch copy of the tree, so this crate's
# artefacts and incremental caches from earlier runs (another path, another hash) are never
# used again: remove them before a run, keeping only the dependencies (the disk is shared).
clean_stale() {
  local d=$CARGO_TARGET_DIR/mutants n
  rm -rf "$d/incremental"
  for n in caffe2rs $(cd tests && ls ./*.rs | sed 's|^\./||; s|\.rs$||'); do
    rm -f "$d/deps/$n"-???????????????? "$d/deps/$n"-????????????????.d \
      "$d/deps/lib$n"-????????????????.* "$d/deps/lib$n".*
  done
  rm -rf "$d/build/caffe2rs"-????????????????
}

status=0
for g in "${order[@]}"; do
  out=$root/target/mutants-out/$g
  mkdir -p "$out"
  clean_stale
  # --gitignore: the scratch copy leaves out what git ignores (target/, a fuzz corpus
  # that a running campaign changes under the copy).
  args=(--profile mutants -j "$jobs" --timeout "$timeout" --build-timeout 600
        --baseline "$baseline" --gitignore true -o "$out" -C=--lib)
  for t in ${group_targets[$g]}; do
    args+=("-C=--test=$t")
  done
  for f in ${group_files[$g]}; do
    args+=(-f "$f")
  done
  if [ "${ITERATE:-0}" = 1 ]; then
    args+=(--iterate)
    # cargo-mutants carries the caught mutants forward but not the unviable ones.
    [ -f "$out/mutants.out/unviable.txt" ] && cat "$out/mutants.out/unviable.txt" >>"$out/unviable.all"
  else
    rm -f "$out/unviable.all"
  fi
  # shellcheck disable=SC2086
  echo "== group $g: cargo mutants ${args[*]} ${MUTANTS_ARGS:-}"
  # cargo-mutants exits 2 when a mutant is missed, 3 on timeouts: the table below says which.
  # shellcheck disable=SC2086
  cargo mutants "${args[@]}" ${MUTANTS_ARGS:-} || status=$?
  if [ -f "$out/unviable.all" ] && [ -f "$out/mutants.out/unviable.txt" ]; then
    sort -u "$out/unviable.all" "$out/mutants.out/unviable.txt" -o "$out/unviable.all"
  fi
  mo=$out/mutants.out
  printf '%-32s %7s %7s %9s %8s\n' file caught missed unviable timeout
  for f in ${group_files[$g]}; do
    unv=("$mo/unviable.txt")
    [ -f "$out/unviable.all" ] && unv=("$out/unviable.all")
    printf '%-32s %7s %7s %9s %8s\n' "$f" \
      "$(count "$f" "$mo/caught.txt" "$mo/previously_caught.txt")" \
      "$(count "$f" "$mo/missed.txt")" "$(count "$f" "${unv[@]}")" \
      "$(count "$f" "$mo/timeout.txt")"
  done
  if [ -s "$mo/missed.txt" ]; then
    echo "-- missed (group $g):"
    cat "$mo/missed.txt"
  fi
done
# 0: every mutant caught; otherwise cargo-mutants' last non-zero exit (2 missed, 3 timeout).
exit $status
