#!/usr/bin/env bash
# gan prepare removes the temporary files (OUT.tmp.<pid>.<n>) that earlier gan prepare runs to the
# same output left behind when they were killed (kill -9, a crash): only those whose process no
# longer runs, never a live process's file nor files of other names; and a failed gan prepare
# leaves no temporary file of its own.
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_prepare_cleanup
make_tiny_idx "$work/data-idx3-ubyte"
out="$work/cache.npy"

# A process id that no longer runs: a child that has exited and been waited for.
bash -c 'exit 0' & dead=$!; wait "$dead"
kill -0 "$dead" 2>/dev/null && { echo "skipped: process $dead was reused at once"; exit 77; }
# A live one (not a gan prepare at all: its file must be left alone whatever it is).
sleep 600 & live=$!
trap 'kill $live 2>/dev/null' EXIT

head -c 5000 /dev/zero > "$out.tmp.$dead.0"
head -c 5000 /dev/zero > "$out.tmp.$dead.17"
echo live > "$out.tmp.$live.0"
echo other > "$work/other.npy.tmp.$dead.0"   # another output's
echo odd > "$out.tmp.$dead"                   # not a name gan prepare writes
echo odd > "$out.tmp.x$dead.0"
mkdir "$out.tmp.$dead.5"                      # not a regular file

expect 0 "wrote" -- "$gan" prepare "$work/data-idx3-ubyte" -o "$out" --size 8 --channels 1
[ ! -e "$out.tmp.$dead.0" ] && [ ! -e "$out.tmp.$dead.17" ] && ok || fail "stale files of process $dead are still there: $(ls "$out".tmp.* 2>&1)"
grep -qF "$out.tmp.$dead.0" "$work/err" && ok || fail "the removal was not reported: $(cat "$work/err")"
[ "$(cat "$out.tmp.$live.0")" = live ] && ok || fail "the file of live process $live was touched"
[ -e "$work/other.npy.tmp.$dead.0" ] && [ -e "$out.tmp.$dead" ] && [ -e "$out.tmp.x$dead.0" ] && [ -d "$out.tmp.$dead.5" ] &&
  ok || fail "files of other names were removed: $(ls "$work")"
# the new cache is there and its own temporary file is gone
[ -s "$out" ] && ok || fail "no cache written"
left=$(find "$work" -maxdepth 1 -type f -regex '.*/cache\.npy\.tmp\.[0-9]+\.[0-9]+' ! -name "cache.npy.tmp.$live.0")
[ -z "$left" ] && ok || fail "temporary files left besides the live process's: $left"

# A failed prepare (every image undecodable) leaves no temporary file and no output.
mkdir -p "$work/bad"
for i in 1 2 3; do echo "not an image" > "$work/bad/$i.jpg"; done
expect 1 "could not be decoded" -- "$gan" prepare "$work/bad" -o "$work/bad.npy" --size 8
ls "$work"/bad.npy* >/dev/null 2>&1 && fail "a failed prepare left $(ls "$work"/bad.npy*)" || ok

# --threads past the cap is refused before anything is written (100000 crashed the OpenMP runtime
# and left OUT.tmp.PID.0).
expect 2 "--threads" -- "$gan" prepare "$work/data-idx3-ubyte" -o "$work/t.npy" --size 8 --channels 1 --threads 100000
ls "$work"/t.npy* >/dev/null 2>&1 && fail "a refused prepare left $(ls "$work"/t.npy*)" || ok
expect 0 "wrote" -- "$gan" prepare "$work/data-idx3-ubyte" -o "$work/t.npy" --size 8 --channels 1 --threads 1024
ls "$work"/t.npy.tmp* >/dev/null 2>&1 && fail "prepare --threads 1024 left $(ls "$work"/t.npy.tmp*)" || ok

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
