#!/usr/bin/env bash
# Outputs never replace anything but a regular file: a FIFO as the target of gan sample --npy/--grid,
# gan export -o (safetensors and ONNX) and gan prepare -o is written in place (the reader gets the
# same bytes a regular file gets) and stays a FIFO; a directory as the target is refused naming it;
# a symbolic link to a file keeps being a link (the file it names is replaced); a write that fails
# (here: over the file-size limit) names the file and the OS reason, leaves no temporary file and
# leaves the old output as it was. (Device nodes: script_outputs_device.sh.)
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_outputs
train_tiny_checkpoint "$work/run"

# The outputs as regular files, to compare with what the other targets receive.
expect 0 "gan sample: 16 images" -- "$gan" sample "$ckpt" --n 16 --npy "$work/ref.npy" --grid "$work/ref.png" --device cpu
expect 0 "gan export" -- "$gan" export "$ckpt" -o "$work/ref.safetensors"
expect 0 "gan export" -- "$gan" export "$ckpt" -o "$work/ref.onnx"
expect 0 "wrote" -- "$gan" prepare "$tiny_data" -o "$work/ref_cache.npy" --size 8 --channels 1

# FIFOs: a reader (cat) collects what is written; afterwards the node is still a FIFO.
start_reader() {
  rm -f "$1" "$1.got"; mkfifo "$1"
  cat "$1" > "$1.got" & reader=$!
}
# finish_reader FIFO: lets the reader end whatever happened (a writer that never opened the FIFO
# is stood in for by an empty one; a reader left on a FIFO that was replaced is killed).
finish_reader() {
  if [ -p "$1" ]; then
    python3 -c 'import os, sys
try: os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK))
except OSError: pass' "$1"
    wait "$reader"
  else
    kill "$reader" 2>/dev/null; wait "$reader" 2>/dev/null
  fi
}
# through_fifo NAME REF COMMAND...: runs COMMAND (exit 0 wanted) with a FIFO at $work/NAME, which
# COMMAND names as "@", then checks the FIFO is one still and the reader got REF's bytes.
through_fifo() {
  local name=$1 ref=$2; shift 2
  local fifo="$work/$name" args=() a
  for a in "$@"; do [ "$a" = @ ] && args+=("$fifo") || args+=("$a"); done
  start_reader "$fifo"
  "${args[@]}" >"$work/out" 2>"$work/err"; local got=$?
  finish_reader "$fifo"
  [ "$got" = 0 ] && ok || fail "${args[*]} exited $got: $(tail -n 2 "$work/err")"
  [ -p "$fifo" ] && ok || fail "$fifo is no longer a FIFO after ${args[*]}: $(ls -l "$fifo" 2>&1)"
  cmp -s "$fifo.got" "$ref" && ok || fail "the reader of $fifo got $(wc -c < "$fifo.got") bytes, not those of $ref"
  ls "$fifo".tmp* >/dev/null 2>&1 && fail "temporary files beside $fifo: $(ls "$fifo".tmp*)" || ok
}
through_fifo s.npy "$work/ref.npy" "$gan" sample "$ckpt" --n 16 --npy @ --device cpu
through_fifo g.png "$work/ref.png" "$gan" sample "$ckpt" --n 16 --grid @ --device cpu
through_fifo g.safetensors "$work/ref.safetensors" "$gan" export "$ckpt" -o @
through_fifo g.onnx "$work/ref.onnx" "$gan" export "$ckpt" -o @
through_fifo cache.npy "$work/ref_cache.npy" "$gan" prepare "$tiny_data" -o @ --size 8 --channels 1

# /dev/stdout, into a pipe and into a file: the data alone (the summary goes to stderr then).
for target in "--npy ref.npy" "--grid ref.png"; do
  set -- $target
  "$gan" sample "$ckpt" --n 16 "$1" /dev/stdout --device cpu 2>"$work/err" | cat > "$work/piped"
  cmp -s "$work/piped" "$work/$2" && ok || fail "sample $1 /dev/stdout into a pipe: not the bytes of $2 ($(cat "$work/err"))"
  "$gan" sample "$ckpt" --n 16 "$1" /dev/stdout --device cpu > "$work/redirected" 2>"$work/err"
  cmp -s "$work/redirected" "$work/$2" && ok || fail "sample $1 /dev/stdout into a file: not the bytes of $2 ($(cat "$work/err"))"
done
"$gan" export "$ckpt" -o /dev/stdout 2>"$work/err" | cat > "$work/piped"
cmp -s "$work/piped" "$work/ref.safetensors" && ok || fail "export -o /dev/stdout: not the bytes of ref.safetensors"
"$gan" prepare "$tiny_data" -o /dev/stdout --size 8 --channels 1 2>"$work/err" | cat > "$work/piped"
cmp -s "$work/piped" "$work/ref_cache.npy" && ok || fail "prepare -o /dev/stdout: not the bytes of ref_cache.npy"

# A directory as the target: refused, naming it; the directory is left alone.
mkdir -p "$work/adir.npy" "$work/adir.png" "$work/adir.safetensors"
expect 1 "$work/adir.npy: is a directory" -- "$gan" sample "$ckpt" --n 4 --npy "$work/adir.npy" --device cpu
expect 1 "$work/adir.png: is a directory" -- "$gan" sample "$ckpt" --n 4 --grid "$work/adir.png" --device cpu
expect 1 "$work/adir.safetensors: is a directory" -- "$gan" export "$ckpt" -o "$work/adir.safetensors"
expect 1 "$work/adir.npy: is a directory" -- "$gan" prepare "$tiny_data" -o "$work/adir.npy" --size 8 --channels 1
for d in adir.npy adir.png adir.safetensors; do
  [ -d "$work/$d" ] && [ -z "$(ls -A "$work/$d")" ] && ok || fail "$work/$d changed"
done
ls "$work"/adir.*.tmp* >/dev/null 2>&1 && fail "temporary files left: $(ls "$work"/adir.*.tmp*)" || ok
# gan sample --dir: the folder must be one.
: > "$work/plainfile"
expect 1 "$work/plainfile: not a directory" -- "$gan" sample "$ckpt" --n 4 --dir "$work/plainfile" --device cpu

# A symbolic link to a file: the file is replaced, the link stays a link. A link to nothing is refused.
: > "$work/linked.npy"
ln -sf linked.npy "$work/link.npy"
expect 0 "gan sample: 16 images" -- "$gan" sample "$ckpt" --n 16 --npy "$work/link.npy" --device cpu
[ -L "$work/link.npy" ] && ok || fail "$work/link.npy is no longer a symbolic link"
cmp -s "$work/linked.npy" "$work/ref.npy" && ok || fail "the file behind the link does not hold the samples"
ln -sf missing.npy "$work/dangling.npy"
expect 1 "$work/dangling.npy" -- "$gan" sample "$ckpt" --n 4 --npy "$work/dangling.npy" --device cpu
[ -L "$work/dangling.npy" ] && [ ! -e "$work/missing.npy" ] && ok || fail "the dangling link was changed"

# A failing write (the file-size limit: 4 KiB): the message names the temporary file and the OS
# reason; nothing temporary is left; an existing output keeps its old bytes.
for target in big.npy big.png big.safetensors big_cache.npy; do echo old > "$work/$target"; done
limited() { (trap '' XFSZ; ulimit -f 4; exec "$@"); }
expect 1 "File too large" -- limited "$gan" sample "$ckpt" --n 64 --npy "$work/big.npy" --device cpu
grep -qF "$work/big.npy.tmp" "$work/err" && ok || fail "the message does not name the file: $(cat "$work/err")"
expect 1 "File too large" -- limited "$gan" sample "$ckpt" --n 64 --grid "$work/big.png" --device cpu
grep -qF "$work/big.png.tmp" "$work/err" && ok || fail "the message does not name the file: $(cat "$work/err")"
expect 1 "File too large" -- limited "$gan" export "$ckpt" -o "$work/big.safetensors"
grep -qF "$work/big.safetensors.tmp" "$work/err" && ok || fail "the message does not name the file: $(cat "$work/err")"
expect 1 "File too large" -- limited "$gan" prepare "$tiny_data" -o "$work/big_cache.npy" --size 64 --channels 1
grep -qF "$work/big_cache.npy.tmp" "$work/err" && ok || fail "the message does not name the file: $(cat "$work/err")"
for target in big.npy big.png big.safetensors big_cache.npy; do
  [ "$(head -c 4 "$work/$target")" = old ] && ok || fail "a failed write changed $work/$target"
done
ls "$work"/big*.tmp* >/dev/null 2>&1 && fail "temporary files left: $(ls "$work"/big*.tmp*)" || ok

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
