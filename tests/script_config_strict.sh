#!/usr/bin/env bash
# Configs on the command line: a CONFIG argument that names an existing file is the config even
# with '=' in its name (otherwise section.key=value is an override); duplicate keys and NUL bytes
# are refused naming the lines; a data.path that exists but is neither a regular file nor a folder
# (a FIFO, which made gan train hang) is refused naming it, before it is opened.
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_config_strict
src="${GAN_SOURCE_DIR:?}"

# A config whose file name holds '='.
cp "$src/tests/data/toy_ring.ini" "$work/lr=0.001.ini"
expect 0 "done: 3 iterations" -- "$gan" train "$work/lr=0.001.ini" train.iterations=3 --device cpu --quiet --out "$work/eq"
[ -f "$work/eq/config.ini" ] && grep -q "^iterations = 3" "$work/eq/config.ini" && ok ||
  fail "the config with '=' in its name, or the override after it, was not used"
# Not a file: still an override (and an unknown key says so).
expect 1 "frob.key" -- "$gan" train "$src/tests/data/toy_ring.ini" frob.key=1 --device cpu --out "$work/x"

# Duplicate keys and NUL bytes, through gan train.
printf '[model]\nnz = 4\nnoise = normal\nnz = 8\n' > "$work/dup.ini"
expect 1 "model.nz is given twice: lines 2 and 4" -- "$gan" train "$work/dup.ini" --device cpu --out "$work/x"
printf '[model]\ngenerator = linear(8) relu\ngenerator = linear(2) reshape(2,1,1)\n' > "$work/dup2.ini"
expect 1 "lines 2 and 3" -- "$gan" train "$work/dup2.ini" --device cpu --out "$work/x"
printf '[model]\nnz = 1\0 00\n' > "$work/nul.ini"
expect 1 "line 2 holds a NUL byte" -- "$gan" train "$work/nul.ini" --device cpu --out "$work/x"
[ ! -e "$work/x" ] && ok || fail "a refused config made the run directory $work/x"

# data.path naming a FIFO: refused before it is opened. Around each case a writer stands by, so
# that a gan that opened the FIFO would read an empty file instead of hanging; it is released after.
mkfifo "$work/data.fifo"
fifo_refused() {
  ( : > "$work/data.fifo" ) 2>/dev/null & local writer=$!
  expect 1 "$work/data.fifo: neither a regular file nor a folder" -- "$@"
  python3 -c 'import os, sys
try: os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK))
except OSError: pass' "$work/data.fifo"
  wait "$writer" 2>/dev/null
}
printf '%s\n' '[model]' 'nz = 8' 'generator = convt(8,4,1,0) bn relu convt(1,4,2,1) tanh' \
  'discriminator = conv(8,4,2,1) lrelu(0.2) conv(1,4,1,0) sigmoid' '[data]' "path = $work/data.fifo" \
  'image_size = 8' 'channels = 1' '[train]' 'iterations = 1' 'batch_size = 8' > "$work/fifo.ini"
fifo_refused "$gan" train "$work/fifo.ini" --device cpu --quiet --out "$work/f1"
fifo_refused "$gan" train "$work/fifo.ini" data.format=idx --device cpu --quiet --out "$work/f2"
fifo_refused "$gan" train "$work/fifo.ini" data.format=npy --device cpu --quiet --out "$work/f3"
fifo_refused "$gan" prepare "$work/data.fifo" -o "$work/c.npy" --size 8 --channels 1
fifo_refused "$gan" prepare "$work/data.fifo" --format cifar -o "$work/c.npy" --size 8
[ -p "$work/data.fifo" ] && ok || fail "the FIFO changed"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
