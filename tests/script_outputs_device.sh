#!/usr/bin/env bash
# Character devices as output targets, made with mknod in this test's own folder (never the
# system's /dev): a null device (1, 3) as the target of gan sample --npy/--grid, gan export -o and
# gan prepare -o is written in place and is still a character device afterwards, with no temporary
# file beside it; a full device (1, 7, what /dev/full is) makes every writer fail with one message
# naming the file and the OS reason (No space left on device), gan sample --dir included.
# Skipped (77) where mknod is not permitted.
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_outputs_device
if ! mknod "$work/null" c 1 3 2>"$work/mknod.err"; then
  echo "skipped: mknod is not permitted here ($(cat "$work/mknod.err")); the FIFO cases run in script_outputs.sh"
  exit 77
fi
if ! echo probe > "$work/null" 2>/dev/null; then
  echo "skipped: device nodes cannot be opened on this file system (mounted nodev?)"; exit 77
fi
mknod "$work/full" c 1 7
train_tiny_checkpoint "$work/run"

# is_char_device NODE WHAT
still_device() {
  [ -c "$1" ] && ok || fail "$1 is no longer a character device after $2: $(ls -l "$1" 2>&1)"
  ls "$1".tmp* >/dev/null 2>&1 && fail "temporary files beside $1 after $2: $(ls "$1".tmp*)" || ok
}

# The null device: every writer succeeds and the node stays.
expect 0 "gan sample: 16 images" -- "$gan" sample "$ckpt" --n 16 --npy "$work/null" --device cpu
still_device "$work/null" "sample --npy"
expect 0 "gan sample: 16 images" -- "$gan" sample "$ckpt" --n 16 --grid "$work/null" --device cpu
still_device "$work/null" "sample --grid"
expect 0 "gan export" -- "$gan" export "$ckpt" -o "$work/null"
still_device "$work/null" "export (safetensors)"
expect 0 "gan export" -- "$gan" export "$ckpt" --format onnx -o "$work/null"
still_device "$work/null" "export (ONNX)"
expect 0 "wrote" -- "$gan" prepare "$tiny_data" -o "$work/null" --size 8 --channels 1
still_device "$work/null" "prepare"

# The full device: each writer fails, naming the device and the reason.
full_fails() {
  local what=$1; shift
  expect 1 "No space left on device" -- "$@"
  grep -qF "$work/full" "$work/err" && ok || fail "$what: the message does not name $work/full: $(cat "$work/err")"
  still_device "$work/full" "$what"
}
full_fails "sample --npy" "$gan" sample "$ckpt" --n 16 --npy "$work/full" --device cpu
full_fails "sample --grid" "$gan" sample "$ckpt" --n 16 --grid "$work/full" --device cpu
full_fails "export" "$gan" export "$ckpt" -o "$work/full"
full_fails "export --format onnx" "$gan" export "$ckpt" --format onnx -o "$work/full"
full_fails "prepare" "$gan" prepare "$tiny_data" -o "$work/full" --size 8 --channels 1

# gan sample --dir into a folder whose third image is a full device: the message names that file.
mkdir -p "$work/images"
mknod "$work/images/000002.png" c 1 7
expect 1 "000002.png: write failed: No space left on device" -- \
  "$gan" sample "$ckpt" --n 4 --dir "$work/images" --device cpu
[ -c "$work/images/000002.png" ] && ok || fail "$work/images/000002.png is no longer a device"
[ -f "$work/images/000001.png" ] && ok || fail "the images before the failing one were not written"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
