#!/usr/bin/env bash
# A data-parallel run's checkpoint resumes on any number of ranks that divides the batch
# (docs/DESIGN.md "Data parallel"), with train.sync_bn on, dcgan_fmnist32 at global batch 16 on the CPU:
# 1. 2 ranks to iteration 2, resumed by one process to iteration 4, continues as the uninterrupted
#    2-rank run to 4 does;
# 2. one process to 2, resumed on 2 ranks to 4, as the uninterrupted one process does.
# 3. SIGUSR1 sent to mpirun stops every rank after the same iteration with a checkpoint (exit
#    130), which one process resumes.
# "As the run does": within tests/dist_compare.py's FP32 tolerances for 4 Adam steps (per weight
# 2 lr (U_1 + ... + U_4) = 8.83 lr, rms 0.1 lr, Adam moments 5% rms, losses 1e-3 relative): the
# checkpoint holds every position (noise, data, dropout, Adam's steps) in global terms, so the
# resumed iterations draw the same z and take the same images; only the sums' order changes with
# the number of ranks. Rank 0 alone chooses the checkpoint and says it resumed.
source "$(dirname "$0")/lib_dist.sh"
script_setup script_dist_resume
require_fmnist
require_mpi

resume() { # resume DIR N [key=value ...]
  local dir=$1 n=$2; shift 2
  local run=("$gan" train --resume "$dir" "$@" --device cpu --quiet)
  local status=0
  if [ "$n" = 0 ]; then "${run[@]}" >"$dir.resume.log" 2>&1 || status=$?
  else ranks "$n" "${run[@]}" >"$dir.resume.log" 2>&1 || status=$?; fi
  if [ "$status" != 0 ]; then fail "resume on $n ranks: exit $status: $(tail -n 5 "$dir.resume.log")"; return 1; fi
  if [ "$(grep -c "resumed from .*ckpt_0000000002.safetensors at iteration 2" "$dir.resume.log")" = 1 ]; then ok
  else fail "resume on $n ranks: the log does not say once where it resumed: $(head -n 3 "$dir.resume.log")"; fi
}

# 1. 2 ranks -> 1 process
train_run "$work/two" 2 train.iterations=4
train_run "$work/two_then_one" 2 train.iterations=2 &&
  resume "$work/two_then_one" 0 train.iterations=4 &&
  close "2 ranks to iteration 2, one process to 4; against 2 ranks to 4" 4 "$work/two" "$work/two_then_one"

# 2. 1 process -> 2 ranks
train_run "$work/one" 0 train.iterations=4
train_run "$work/one_then_two" 0 train.iterations=2 &&
  resume "$work/one_then_two" 2 train.iterations=4 &&
  close "one process to iteration 2, 2 ranks to 4; against one process to 4" 4 "$work/one" "$work/one_then_two"

# 3. SIGUSR1 to mpirun (which forwards it to every rank): the ranks stop after the same iteration,
#    rank 0 writes its checkpoint, exit 130; one process resumes from it
mpirun $mpirun_options -np 2 "$gan" train "$config" train.batch_size=16 train.iterations=100000 log.every=1 \
  log.sample_every=0 --device cpu --quiet --out "$work/usr1" </dev/null >"$work/usr1.log" 2>&1 &
job=$!
for ((i = 0; i < 600; i++)); do [ -s "$work/usr1/metrics.jsonl" ] && break; sleep 0.1; done
kill -USR1 "$job"
status=0
wait "$job" || status=$?
if [ "$status" = 130 ] && grep -q "gan: stopped by SIGUSR1 after iteration" "$work/usr1.log"; then ok
else fail "SIGUSR1: exit $status, want 130 and the stop said: $(tail -n 5 "$work/usr1.log")"; fi
stopped_at=$(sed -n 's/.*stopped by SIGUSR1 after iteration \([0-9]*\).*/\1/p' "$work/usr1.log")
if [ -n "$stopped_at" ] &&
   "$gan" train --resume "$work/usr1" train.iterations=$((stopped_at + 2)) --device cpu --quiet \
     >"$work/usr1.resume.log" 2>&1 &&
   grep -q "resumed from .* at iteration $stopped_at" "$work/usr1.resume.log"; then ok
else fail "resuming after SIGUSR1: $(tail -n 5 "$work/usr1.resume.log" 2>/dev/null)"; fi

echo "script_dist_resume: $passed passed, $failed failed"
[ "$failed" = 0 ]
