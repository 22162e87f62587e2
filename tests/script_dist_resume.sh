#!/usr/bin/env bash
# A data-parallel run's checkpoint resumes on any number of ranks that divides the batch
# (docs/DESIGN.md section 13), with train.sync_bn on, dcgan_fmnist32 at global batch 16 on the CPU:
# 1. 2 ranks to iteration 2, resumed by one process to iteration 4, continues as the uninterrupted
#    2-rank run to 4 does;
# 2. one process to 2, resumed on 2 ranks to 4, as the uninterrupted one process does.
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

echo "script_dist_resume: $passed passed, $failed failed"
[ "$failed" = 0 ]
