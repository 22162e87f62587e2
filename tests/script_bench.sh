#!/usr/bin/env bash
# gan bench ops|train|data on tiny shapes: each runs, prints what it promises (the one summary
# line of bench train, the FLOP count of an iteration, a row per op and layer), and refuses bad
# arguments. Numbers are not judged (no timed asserts), only their presence and the FLOP count.
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_bench

# bench train: ends with exactly one summary line, in the promised format.
summary='^train dcgan_fmnist32 batch 4: [0-9.]+ ms/it, [0-9.]+ img/s, [0-9.]+ GFLOP/s \([0-9.]+% of sgemm peak\)$'
if expect 0 "reproduce   : gan bench train dcgan_fmnist32 train.batch_size=4 --device cpu" -- \
     "$gan" bench train dcgan_fmnist32 train.batch_size=4 --device cpu --iterations 2 --warmup 1 --rounds 2; then
  cp "$work/out" "$work/train.out"
  n=$(grep -cE "$summary" "$work/train.out")
  [ "$n" = 1 ] && ok || fail "bench train printed $n summary lines, want 1: $(cat "$work/train.out")"
  tail -n 1 "$work/train.out" | grep -qE "$summary" && ok || fail "bench train does not end with the summary line"
  # FLOPs of one iteration at batch 4, by hand (bench_util.c): per sample, G's convt passes
  # 2*16*(100*256 + 256*16*128 + 128*64*64 + 64*256*1) = 34897920 (first layer 819200), D's conv
  # passes 2*16*(64*256*1 + 128*64*64 + 256*16*128 + 1*256) = 34086912 (first layer 524288);
  # 6 F_D - 2 F_D0 + F_G + 2 F_D + 2 F_G - F_G0 = 375521280 per sample.
  grep -qF "(1502085120) of conv/convt/linear passes" "$work/train.out" && ok ||
    fail "bench train's FLOP count is not 4 x 375521280: $(grep flops "$work/train.out")"
  grep -qE '^memory +: [0-9.]+ MiB planned peak' "$work/train.out" && ok || fail "no planned peak memory"
fi

# bench ops: one row per op of every layer (fmnist32: G 30, D 28, BCE 1, Adam 2: each convolution
# layer's three passes and its two backward passes as one op), and the CPU's fused convolution +
# activation where an activation follows (G's last layer, D's first).
if expect 0 "reproduce   : gan bench ops --device cpu --batch 4" -- \
     "$gan" bench ops --device cpu --configs dcgan_fmnist32 --batch 4 --runs 1 --warmup 0 --min-ms 0; then
  rows=$(grep -cE '^(conv|convt|bn|relu|lrelu|tanh|sigmoid|bce\+sigmoid|adam) ' "$work/out")
  [ "$rows" = 63 ] && ok || fail "bench ops printed $rows op rows, want 63"
  grep -qE '^conv fwd\+lrelu +D\.0 +\[4,1,32,32\]->\[4,64,16,16\] k4s2p1 .* im2col k4s2p1 \+ sgemm$' "$work/out" &&
    ok || fail "no D.0 conv fwd+lrelu row"
  grep -qE '^convt fwd\+tanh +G\.9 .* sgemm \+ col2im k4s2p1$' "$work/out" && ok || fail "no G.9 convt fwd+tanh row"
  grep -qE '^conv fwd +D\.2 +\[4,64,16,16\]->\[4,128,8,8\] k4s2p1 ' "$work/out" && ok || fail "no D.2 conv row"
  grep -qE '^convt bwd-filter +G\.0 ' "$work/out" && ok || fail "no G.0 convt bwd-filter row"
  # each convolution row names its algorithm: G.0 covers its whole input (one GEMM)
  grep -qE '^convt fwd +G\.0 .*sgemm \(whole-input kernel\)$' "$work/out" && ok ||
    fail "the G.0 convt row does not name its algorithm"
  grep -qE '^conv fwd +D\.2 .* im2col k4s2p1 \+ sgemm$' "$work/out" && ok ||
    fail "the D.2 conv row does not name its algorithm"
  # x/it: how often one iteration runs each row's op, as training runs it (D forward 3 times,
  # its input gradients 3 times, its weight gradients twice; G once each). An activation fused
  # into the batch norm or the convolution before it counts there, and its parts count 0. A
  # backward that makes both gradients of a layer runs them as one op (grads: D's two of its D
  # step, G's one, except each first layer's, which has no input gradient to make).
  bench_x_it "$work/out" "bn fwd-train|G.1|0" "bn bwd|G.1|0" "bn+relu fwd-train|G.1|1" "bn+relu bwd|G.1|1" \
    "relu fwd|G.2|0" "relu bwd|G.2|0" "bn+lrelu fwd-train|D.3|3" "bn+lrelu bwd|D.3|3" "lrelu fwd|D.4|0" \
    "conv fwd|D.0|0" "conv fwd+lrelu|D.0|3" "lrelu fwd|D.1|0" "lrelu bwd|D.1|3" "convt fwd|G.9|0" \
    "convt fwd+tanh|G.9|1" "tanh bwd|G.10|1" "conv bwd-data|D.2|1" "conv bwd-filter|D.2|0" "conv grads|D.2|2" \
    "convt bwd-data|G.0|0" "convt bwd-filter|G.0|1" "convt grads|G.0|0" "convt bwd-filter|G.6|0" \
    "convt grads|G.6|1" "conv bwd-data|D.0|1" "conv bwd-filter|D.0|2" "conv grads|D.0|0" "sigmoid fwd|D.9|0"
  bench_total "$work/out"
fi
expect 0 "linear bwd-filter" -- "$gan" bench ops --device cpu --configs mlp_mnist --batch 2 --runs 1 --min-ms 0 --ops conv

# bench data: a tiny prepare + loader run.
expect 0 "prepare     :" -- "$gan" bench data --images 32 --batch 8 --runs 1 --batches 4 --no-step --dir "$work/data"

# refusals: one message, non-zero exit
expect 2 "unknown benchmark" -- "$gan" bench nope
expect 1 "no such file" -- "$gan" bench train no_such_config --device cpu
expect 2 "--batch wants positive integers" -- "$gan" bench ops --batch 0
expect 2 "unknown op group" -- "$gan" bench ops --ops conv,nope
# option numbers are strict (atoi took "3x" as 3 and "x" as 0): refused before anything runs
expect 2 "bench ops: --runs 3x" -- "$gan" bench ops --runs 3x
expect 2 "bench ops: --min-ms 1ms" -- "$gan" bench ops --min-ms 1ms
expect 2 "bench data: --images 12x" -- "$gan" bench data --images 12x
expect 2 "bench data: --step-ms fast" -- "$gan" bench data --step-ms fast
expect 2 "bench train: --rounds 'x'" -- "$gan" bench train --rounds x
expect 2 "bench train: --seconds '1s'" -- "$gan" bench train --seconds 1s
expect 1 "unknown key" -- "$gan" bench train dcgan_fmnist32 train.nope=1 --device cpu

echo "script_bench: $passed passed, $failed failed"
[ "$failed" = 0 ]
