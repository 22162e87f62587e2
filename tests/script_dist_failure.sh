#!/usr/bin/env bash
# Failures of a data-parallel run (docs/DESIGN.md "Data parallel") end the whole job, never a hang:
# 1. bad input that every rank meets (a batch the ranks cannot share out, a missing data path, a
#    missing config) is reported once, by rank 0, and the job exits non-zero;
# 2. a rank killed mid-run (SIGKILL: no chance to say anything): mpirun ends the job, non-zero,
#    within 30 s, saying which rank died;
# 3. a rank that fails on an error path mid-run (rank 0's checkpoint cannot be written: its
#    checkpoints folder became a file) prints its message and calls MPI_Abort while the other rank
#    waits in the next all-reduce: the job ends non-zero within 30 s, with that message.
# The 30 s are a bound on a hang (the runs would otherwise go on for minutes), not a speed.
source "$(dirname "$0")/lib_dist.sh"
script_setup script_dist_failure
require_fmnist
require_mpi

# 1. reported once
said_once() { # said_once WHAT NEEDLE -- COMMAND...: exits non-zero, NEEDLE once in its output
  local what=$1 needle=$2; shift 3
  local status=0
  "$@" >"$work/out" 2>&1 || status=$?
  local times; times=$(grep -c -- "$needle" "$work/out")
  if [ "$status" != 0 ] && [ "$times" = 1 ] && [ "$(grep -c '^gan train: ' "$work/out")" = 1 ]; then ok
  else fail "$what: exit $status, '$needle' said $times times (want non-zero, once): $(head -n 8 "$work/out")"; fi
}
said_once "a batch of 15 on 2 ranks" "share out evenly" -- \
  ranks 2 "$gan" train "$config" train.batch_size=15 --device cpu --quiet --out "$work/odd"
said_once "a missing data path on 2 ranks" "/nonexistent/fashion" -- \
  ranks 2 "$gan" train "$config" data.path=/nonexistent/fashion --device cpu --quiet --out "$work/nodata"
said_once "a missing config on 4 ranks" "no_such_config.ini" -- \
  ranks 4 "$gan" train "$work/no_such_config.ini" --device cpu --quiet --out "$work/noconfig"
if [ ! -e "$work/odd" ] && [ ! -e "$work/nodata" ]; then ok
else fail "a run refused at start-up left a run directory behind"; fi

# A long run in the background on 2 ranks; sets $job (mpirun's pid) once rank 0 has logged an
# iteration, or fails.
start_long_run() { # start_long_run DIR [key=value ...]
  local dir=$1; shift
  mpirun $mpirun_options -np 2 "$gan" train "$config" train.batch_size=16 train.iterations=100000 \
    log.every=1 log.sample_every=0 "$@" --device cpu --quiet --out "$dir" </dev/null >"$dir.log" 2>&1 &
  job=$!
  local i
  for ((i = 0; i < 600; i++)); do
    [ -s "$dir/metrics.jsonl" ] && return 0
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  fail "the run did not get going: $(tail -n 5 "$dir.log")"; kill -9 "$job" 2>/dev/null; return 1
}

# ends_within_30s WHAT NEEDLE DIR: mpirun ($job) exits non-zero within 30 s, NEEDLE in DIR.log.
ends_within_30s() {
  local what=$1 needle=$2 dir=$3 i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$job" 2>/dev/null; then
    fail "$what: the job still runs 30 s later (a hang): $(tail -n 5 "$dir.log")"
    pkill -9 -P "$job"; kill -9 "$job"; wait "$job" 2>/dev/null; return 1
  fi
  local status=0
  wait "$job" || status=$?
  echo "-- $what: exit $status after $((i / 10)).$((i % 10)) s; $(grep -m 1 -- "$needle" "$dir.log")"
  if [ "$status" != 0 ] && grep -q -- "$needle" "$dir.log"; then ok
  else fail "$what: exit $status, want non-zero and '$needle' in: $(tail -n 8 "$dir.log")"; fi
}

# the pid of rank R under mpirun $job (its child whose environment says so)
rank_pid() {
  local pid
  for pid in $(pgrep -P "$job"); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
      echo "$pid"; return 0; fi
  done
  return 1
}

# 2. rank 1 killed
if start_long_run "$work/killed"; then
  if victim=$(rank_pid 1); then
    kill -9 "$victim"
    ends_within_30s "rank 1 killed mid-run" "exited on signal 9" "$work/killed"
  else
    fail "no rank 1 among mpirun's children"; pkill -9 -P "$job"; kill -9 "$job"
  fi
fi

# 3. rank 0 fails writing a checkpoint (every other iteration)
if start_long_run "$work/failing" log.checkpoint_every=2; then
  rm -rf "$work/failing/checkpoints" && touch "$work/failing/checkpoints"
  ends_within_30s "rank 0's checkpoint cannot be written" "gan train: rank 0 of 2: " "$work/failing"
fi

echo "script_dist_failure: $passed passed, $failed failed"
[ "$failed" = 0 ]
