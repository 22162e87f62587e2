#!/usr/bin/env bash
# gan train / sample / export from the command line: runs, keep-K checkpoints, resume, refusals
# of bad input (one message, non-zero exit, nothing overwritten), and SIGINT (checkpoint, 130).
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_train_cli
src="${GAN_SOURCE_DIR:?}"
cfg="$src/tests/data/toy_ring.ini"

# A run: 200 iterations, checkpoints every 50, the last 2 kept.
expect 0 "done: 200 iterations" -- "$gan" train "$cfg" --device cpu --quiet --out "$work/run"
n=$(ls "$work"/run/checkpoints/ckpt_*.safetensors 2>/dev/null | wc -l)
[ "$n" = 2 ] && ok || fail "kept $n checkpoints, want 2"
[ -f "$work/run/config.ini" ] && [ -s "$work/run/metrics.jsonl" ] && ok || fail "no config.ini or metrics.jsonl"
lines=$(wc -l < "$work/run/metrics.jsonl")
[ "$lines" = 4 ] && ok || fail "metrics.jsonl has $lines lines, want 4"
[ -f "$work/run/samples/final.npy" ] && ok || fail "no final samples (.npy for 2-d points)"
last="$work/run/checkpoints/ckpt_0000000200.safetensors"
[ -f "$last" ] && ok || fail "no checkpoint at iteration 200"

# The same directory again without --resume: refused, checkpoints untouched.
before=$(md5sum "$last")
expect 1 "already holds checkpoints" -- "$gan" train "$cfg" --device cpu --quiet --out "$work/run"
[ "$before" = "$(md5sum "$last")" ] && ok || fail "a refused run changed $last"

# Resume to 300 iterations.
expect 0 "resumed from" -- "$gan" train --resume "$work/run" train.iterations=300 --device cpu --quiet
last="$work/run/checkpoints/ckpt_0000000300.safetensors"
[ -f "$last" ] && ok || fail "resume did not reach 300"
[ ! -e "$work/run/checkpoints/ckpt_0000000200.safetensors" ] && ok || fail "keep_checkpoints = 2 kept iteration 200"

# Bad input: one message naming the problem, non-zero exit.
expect 1 "train.batchsize" -- "$gan" train "$cfg" train.batchsize=3 --out "$work/x"
expect 1 "train.batch_size" -- "$gan" train "$cfg" train.batch_size=zero --out "$work/x"
expect 1 "/nonexistent.ini" -- "$gan" train /nonexistent.ini --out "$work/x"
printf '[model]\ngenerator = linear(4) frob\ndiscriminator = flatten linear(1) sigmoid\n[data]\nformat = toy\nchannels = 2\nimage_size = 1\n' > "$work/bad.ini"
expect 1 "frob" -- "$gan" train "$work/bad.ini" --device cpu --out "$work/x"
expect 1 "no such run directory" -- "$gan" train --resume "$work/missing" --device cpu
expect 1 "not a gan checkpoint" -- "$gan" sample "$src/tests/fixtures/relu.safetensors" --npy "$work/s.npy"
head -c 1000 "$last" > "$work/truncated.safetensors"
expect 1 "truncated.safetensors" -- "$gan" export "$work/truncated.safetensors" -o "$work/g.safetensors"
[ ! -e "$work/g.safetensors" ] && ok || fail "a failed export left a file"
expect 2 "" -- "$gan" frobnicate

# Sample and export from the run.
expect 0 "gan sample: 10 images" -- "$gan" sample "$last" --n 10 --npy "$work/s.npy" --device cpu
expect 0 "net.0.weight" -- "$gan" export "$last" -o "$work/g.safetensors"

# SIGINT: finish the step, write a checkpoint, exit 130.
"$gan" train "$cfg" train.iterations=100000000 log.checkpoint_every=0 --device cpu --quiet --out "$work/int" \
  >"$work/int.out" 2>"$work/int.err" &
pid=$!
for _ in $(seq 1 50); do grep -q "^\[" "$work/int.out" 2>/dev/null && break; sleep 0.2; done
kill -INT "$pid"; wait "$pid"; status=$?
[ "$status" = 130 ] && ok || fail "SIGINT exit status $status, want 130 ($(cat "$work/int.err"))"
ls "$work"/int/checkpoints/ckpt_*.safetensors >/dev/null 2>&1 && ok || fail "no checkpoint after SIGINT"
grep -q "interrupted after iteration" "$work/int.err" && ok || fail "no interruption message"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
