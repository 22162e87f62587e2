#!/usr/bin/env bash
# Command-line values parsed strictly: numbers are digits in a stated range (no 1e3, no sign where
# unsigned, nothing after the digits), --seed is a full unsigned 64-bit integer, an empty path is
# refused, every command's --help / -h prints its usage on stdout and exits 0, and a refused value
# is one line on stderr with exit status 2.
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_cli_args
src="${GAN_SOURCE_DIR:?}"

# A small checkpoint to sample from: the toy MLP, 2 iterations.
"$gan" train "$src/tests/data/toy_ring.ini" train.iterations=2 log.checkpoint_every=0 --device cpu \
  --quiet --out "$work/run" > "$work/train.log" 2>&1 || { echo "FAIL: training the toy model"; cat "$work/train.log"; exit 1; }
ckpt=$(ls "$work"/run/checkpoints/ckpt_*.safetensors | tail -n 1)

# --help and -h: usage on stdout, nothing on stderr, exit 0.
for cmd in "train" "sample" "export" "prepare" "info" "selftest" "bench" "bench ops" "bench train" "bench data"; do
  for flag in --help -h; do
    # shellcheck disable=SC2086
    "$gan" $cmd $flag >"$work/out" 2>"$work/err"; got=$?
    if [ "$got" = 0 ] && [ -s "$work/out" ] && [ ! -s "$work/err" ] && grep -qi "usage" "$work/out"; then ok
    else fail "gan $cmd $flag: exit $got, stdout $(wc -c <"$work/out") bytes, stderr: $(head -c 200 "$work/err")"; fi
  done
done

# refused STATUS NEEDLE -- COMMAND...: exit 2, one line on stderr naming NEEDLE, nothing on stdout.
refused() {
  local needle=$1; shift 2
  "$@" >"$work/out" 2>"$work/err"; local got=$?
  if [ "$got" != 2 ]; then fail "$* exited $got, want 2: $(tail -n 2 "$work/err")"; return; fi
  if ! grep -qF -- "$needle" "$work/err"; then fail "$*: stderr lacks '$needle': $(cat "$work/err")"; return; fi
  if [ -s "$work/out" ]; then fail "$*: wrote to stdout: $(head -c 200 "$work/out")"; return; fi
  ok
}

# gan sample --n: a positive integer up to 1,000,000.
for bad in 1e3 0 -1 abc "" 12x " 5" +5 1000001 0x10 2.5; do
  refused "--n" -- "$gan" sample "$ckpt" --n "$bad" --npy "$work/n.npy" --device cpu
done
[ ! -e "$work/n.npy" ] && ok || fail "a refused --n wrote $work/n.npy"
expect 0 "gan sample: 5 images" -- "$gan" sample "$ckpt" --n 5 --npy "$work/n.npy" --device cpu

# gan sample --seed: 0..18446744073709551615, digits only.
for bad in -1 abc 1e3 "" 18446744073709551616 99999999999999999999 +5 " 5" 5x 0x5; do
  refused "--seed" -- "$gan" sample "$ckpt" --n 2 --seed "$bad" --npy "$work/s.npy" --device cpu
done
expect 0 "gan sample: 2 images" -- "$gan" sample "$ckpt" --n 2 --seed 18446744073709551615 --npy "$work/max.npy" --device cpu
expect 0 "gan sample: 2 images" -- "$gan" sample "$ckpt" --n 2 --seed 0 --npy "$work/zero.npy" --device cpu
# the largest seed is a seed of its own, not one that wrapped around to another value
cmp -s "$work/max.npy" "$work/zero.npy" && fail "--seed 18446744073709551615 gave the samples of --seed 0" || ok

# Empty paths are refused before anything runs.
refused "--npy" -- "$gan" sample "$ckpt" --npy "" --device cpu
refused "--grid" -- "$gan" sample "$ckpt" --grid "" --device cpu
refused "--dir" -- "$gan" sample "$ckpt" --dir "" --device cpu
refused "--noise" -- "$gan" sample "$ckpt" --noise "" --npy "$work/e.npy" --device cpu
refused "-o" -- "$gan" export "$ckpt" -o ""
refused "-o" -- "$gan" prepare "$work/data" -o "" --size 8
# (a config that does not exist: a gan that took --out "" would fail on it before writing into /)
refused "--out" -- "$gan" train "$work/missing/toy.ini" --out "" --device cpu
refused "--resume" -- "$gan" train --resume "" --device cpu
[ ! -e "$work/e.npy" ] && ok || fail "a refused sample wrote $work/e.npy"

# gan prepare: --threads 1..1024, --size 1..4096, --channels 1 or 3.
mkdir -p "$work/data"
for bad in 100000 1025 0 -1 abc "" 1e3 4x; do
  refused "--threads" -- "$gan" prepare "$work/data" -o "$work/c.npy" --size 8 --threads "$bad"
done
for bad in 0 -5 1e3 abc "" 4097 8.0; do
  refused "--size" -- "$gan" prepare "$work/data" -o "$work/c.npy" --size "$bad"
done
for bad in 2 0 4 abc "" 1e0; do
  refused "--channels" -- "$gan" prepare "$work/data" -o "$work/c.npy" --size 8 --channels "$bad"
done
refused "--max-bad-fraction" -- "$gan" prepare "$work/data" -o "$work/c.npy" --size 8 --max-bad-fraction 2
ls "$work"/c.npy* >/dev/null 2>&1 && fail "a refused prepare left $(ls "$work"/c.npy*)" || ok

# gan selftest --batch: 2..65536 (parsed before any device is opened).
for bad in 1e3 abc "" 0 1 -4 65537; do
  refused "--batch" -- "$gan" selftest --batch "$bad"
done

# Unknown options and extra arguments: exit 2 with the usage on stderr.
refused "usage" -- "$gan" info --frob
refused "usage" -- "$gan" sample "$ckpt" --frob --npy "$work/f.npy"
refused "usage" -- "$gan" export "$ckpt" -o "$work/x.safetensors" --frob

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
