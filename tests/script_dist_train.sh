#!/usr/bin/env bash
# Data-parallel training (mpirun -np N gan train; docs/DESIGN.md "Data parallel") under Debian's
# OpenMPI over loopback, against one process, on the CPU:
# 1. train.sync_bn (the default): 2 and 4 ranks at global batch 16 for 3 iterations of
#    dcgan_fmnist32 equal one process at batch 16: losses, D(x), D(G(z)) of every iteration and
#    every weight, running statistic and Adam moment within the FP32 tolerances tests/dist_compare.py
#    states and derives; mlp_mnist too (dropout masks drawn by global sample index, batch norm 1d).
#    Rank 0 alone writes: one metrics.jsonl of 3 lines, the log says the world size and the
#    threads per rank (OMP_NUM_THREADS overrides them). On one process without mpirun
#    (GAN_DIST_FORCE=1) the data-parallel path writes the plain run's checkpoint data bit for bit.
# 2. train.sync_bn = false (each rank's own statistics): after 5 iterations every rank holds the
#    same bits (weights, running statistics, Adam moments: GAN_DIST_DUMP's files compared with
#    cmp): dcgan_fmnist32 on 4 ranks, mlp_mnist (dropout) on 2.
# 3. gan bench train on 2 ranks prints its per-rank, total and all-reduce lines.
source "$(dirname "$0")/lib_dist.sh"
script_setup script_dist_train
require_fmnist
require_mpi

# 1. sync_bn: N ranks equal one process
train_run "$work/one" 0 train.iterations=3
for n in 2 4; do
  train_run "$work/ranks$n" "$n" train.iterations=3 &&
    close "dcgan_fmnist32, one process and $n ranks" 3 "$work/one" "$work/ranks$n"
done
if grep -q "data parallel: 4 ranks, batch 16 = 4 x 4 per rank" "$work/ranks4.log" &&
   grep -q "statistics of the whole batch of 16, summed over the ranks" "$work/ranks4.log"; then ok
else fail "the 4-rank log does not say how the batch is shared out: $(head -n 5 "$work/ranks4.log")"; fi
lines=$(wc -l < "$work/ranks4/metrics.jsonl")
if [ "$lines" = 3 ] && [ "$(grep -c '^\[0/1\]' "$work/ranks4.log")" = 3 ]; then ok
else fail "4 ranks wrote $lines metrics lines and $(grep -c '^\[0/1\]' "$work/ranks4.log") log lines, want 3 each (rank 0 alone)"; fi

# The one-rank data-parallel path (GAN_DIST_FORCE=1, no mpirun: every all-reduce and the split
# batch norm run) writes the very checkpoint data of the plain run.
data_section() { python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; sys.stdout.buffer.write(b[8+n:])' "$1"; }
GAN_DIST_FORCE=1 train_run "$work/forced" 0 train.iterations=3 &&
  if cmp -s <(data_section "$(last_checkpoint "$work/one")") <(data_section "$(last_checkpoint "$work/forced")"); then ok
  else fail "GAN_DIST_FORCE=1 on one process: the checkpoint's tensors differ from the plain run's"; fi
# threads per rank: the cores over the ranks on the machine, or OMP_NUM_THREADS
if grep -q "^threads per rank: [0-9]* (.* cores on this machine / 4 ranks on it" "$work/ranks4.log"; then ok
else fail "the 4-rank log does not say the threads per rank: $(head -n 2 "$work/ranks4.log")"; fi
ranks 2 -x OMP_NUM_THREADS=1 "$gan" train "$config" train.iterations=1 train.batch_size=16 log.sample_every=0 \
  --device cpu --quiet --out "$work/threads" >"$work/threads.log" 2>&1
if grep -q "^threads per rank: 1 (OMP_NUM_THREADS=1, set by the user)" "$work/threads.log"; then ok
else fail "OMP_NUM_THREADS does not override the threads per rank: $(head -n 3 "$work/threads.log")"; fi

config="$GAN_SOURCE_DIR/configs/mlp_mnist.ini"
train_run "$work/mlp_one" 0 train.iterations=3
train_run "$work/mlp_ranks2" 2 train.iterations=3 &&
  close "mlp_mnist, one process and 2 ranks" 3 "$work/mlp_one" "$work/mlp_ranks2"

# 2. sync_bn = false: every rank the same bits
same_on_every_rank() {
  local what=$1 n=$2 dump=$3
  local r
  for ((r = 1; r < n; r++)); do
    if ! cmp -s "$dump/rank0.safetensors" "$dump/rank$r.safetensors"; then
      fail "$what: rank $r's state differs from rank 0's"; return 1; fi
  done
  echo "-- $what: ranks 0..$((n - 1)) hold the same bits"
  ok
}
config="$GAN_SOURCE_DIR/configs/dcgan_fmnist32.ini"
mkdir -p "$work/dump4" "$work/dump_mlp"
GAN_DIST_DUMP="$work/dump4" train_run "$work/own4" 4 train.iterations=5 train.sync_bn=false &&
  same_on_every_rank "dcgan_fmnist32, sync_bn = false, 4 ranks, 5 iterations" 4 "$work/dump4"
if grep -q "each rank normalises its 4 samples by their own statistics" "$work/own4.log"; then ok
else fail "the log does not say that sync_bn = false uses each rank's statistics"; fi
config="$GAN_SOURCE_DIR/configs/mlp_mnist.ini"
GAN_DIST_DUMP="$work/dump_mlp" train_run "$work/mlp_own2" 2 train.iterations=5 train.sync_bn=false &&
  same_on_every_rank "mlp_mnist, sync_bn = false, 2 ranks, 5 iterations" 2 "$work/dump_mlp"

# 3. gan bench train on 2 ranks reports per rank, in total, the all-reduces and the efficiency
if ranks 2 "$gan" bench train "$GAN_SOURCE_DIR/configs/dcgan_fmnist32.ini" train.batch_size=16 --device cpu \
     --iterations 2 --rounds 1 --warmup 1 >"$work/bench.log" 2>&1 &&
   grep -q "^rank 1 *: median" "$work/bench.log" && grep -q "^all-reduces : per iteration 2 of floats" "$work/bench.log" &&
   grep -q "^train dcgan_fmnist32 batch 16 on 2 ranks: .* img/s total .* scaling efficiency" "$work/bench.log"; then ok
else fail "gan bench train on 2 ranks: $(tail -n 8 "$work/bench.log")"; fi

echo "script_dist_train: $passed passed, $failed failed"
[ "$failed" = 0 ]
