#!/usr/bin/env bash
# Start-up and resume checks against what a hostile (or unlucky) user hands gan train, each on the
# toy ring (fractions of a second):
#   1. a checkpoint that cannot be read (here: a directory where the file should be) stops the
#      resume naming it; nothing is moved aside and no older checkpoint is resumed from;
#   2. no checkpoint verifies: the quiet look that reads the config says why for each one;
#   3. --resume of a directory that is no run refuses and leaves nothing (no lock) in it;
#   4. checkpoints/ or samples/ a regular file: refused at start-up, before any training;
#   5. config values the stored config cannot carry are refused before the run directory exists;
#   6. folder link loops are listed once; a FIFO as split list or config is refused, not waited on;
#   7. the unique temporary names a killed writer leaves are removed at resume, others' files kept;
#   8. a bad layer string, D of the wrong output or a bad device: refused, no run directory made.
source "$(dirname "$0")/lib_script.sh"
script_setup script_run_hostile
toy="$GAN_SOURCE_DIR/tests/data/toy_ring.ini"
quick=(log.every=1000 log.sample_every=0 --device cpu --quiet)

# damage FILE: 64 bytes of 0xff over the end of the tensor data
damage() { python3 -c "
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-100:-36] = b'\xff' * 64; open(p, 'wb').write(b)" "$1"; }

# ---- 1. an unreadable checkpoint is not "damaged" -------------------------------------------------
run="$work/unreadable"
"$gan" train "$toy" train.iterations=4 log.checkpoint_every=2 log.keep_checkpoints=5 "${quick[@]}" --out "$run" > /dev/null
ck="$run/checkpoints"
mv "$ck/ckpt_0000000004.safetensors" "$work/ckpt4"
mkdir "$ck/ckpt_0000000004.safetensors" # opens, but is no regular file: an I/O error, not a format one
expect 1 "$ck/ckpt_0000000004.safetensors: not a regular file" -- \
  "$gan" train --resume "$run" train.iterations=6 "${quick[@]}"
[ -d "$ck/ckpt_0000000004.safetensors" ] && ok || fail "the unreadable checkpoint was moved"
ls "$ck" | grep -q corrupt && fail "something was moved aside: $(ls "$ck")" || ok
[ ! -e "$ck/ckpt_0000000006.safetensors" ] && ok || fail "the run resumed from an older checkpoint"
rmdir "$ck/ckpt_0000000004.safetensors"; mv "$work/ckpt4" "$ck/ckpt_0000000004.safetensors"

# ---- 2. none verifies: the reasons are in the message -----------------------------------------------
damage "$ck/ckpt_0000000004.safetensors"; damage "$ck/ckpt_0000000002.safetensors"
expect 1 "ckpt_0000000002.safetensors: the tensor data does not match its checksum" -- \
  "$gan" train --resume "$run" train.iterations=6 "${quick[@]}"
grep -q "ckpt_0000000004.safetensors: the tensor data does not match" "$work/err" && ok ||
  fail "the message lacks the newest checkpoint's reason: $(cat "$work/err")"
grep -q "listed above" "$work/err" && fail "the message points at a list that was not printed" || ok

# ---- 3. --resume of a directory that is no run -------------------------------------------------------
mkdir -p "$work/not_a_run"
expect 1 "is not a run directory" -- "$gan" train --resume "$work/not_a_run" "${quick[@]}"
[ -z "$(ls -A "$work/not_a_run")" ] && ok || fail "--resume left $(ls -A "$work/not_a_run") in a directory that is no run"

# ---- 4. checkpoints/ or samples/ a regular file ---------------------------------------------------------
for name in checkpoints samples; do
  mkdir -p "$work/file_$name"; echo x > "$work/file_$name/$name"
  expect 1 "$work/file_$name/$name exists and is not a directory" -- \
    "$gan" train "$toy" train.iterations=100000000 "${quick[@]}" --out "$work/file_$name"
done

# ---- 5. values the stored config cannot carry --------------------------------------------------------
long="$work/$(printf 'a%.0s' $(seq 1 240))"
expect 1 "data.path = '" -- "$gan" train "$toy" "data.path=$long" "${quick[@]}" --out "$work/long"
[ ! -e "$work/long" ] && ok || fail "a refused config left $work/long"
expect 1 "which the INI reader takes as the start of a comment" -- \
  "$gan" train "$toy" "data.path=/x/my ;set" "${quick[@]}" --out "$work/comment"
[ ! -e "$work/comment" ] && ok || fail "a refused config left $work/comment"

# ---- 6. data that would hang or explode the listing ---------------------------------------------------
# folder links that loop (two links to '.', one to the folder itself): each folder listed once, with
# a warning. Without that the walk made 3^64 paths (15 GB in 10 s): the limits turn it into a failure.
images="$work/looped/imgs"
mkdir -p "$images"; cp "$GAN_SOURCE_DIR"/tests/data/fid/colour/0[1-4].png "$images/"
ln -s . "$images/a"; ln -s . "$images/b"; ln -s ../imgs "$images/c"
# (one thread each for prepare, OpenMP and OpenBLAS: their per-thread reservations stay far below the
# cap. A sanitizer build reserves terabytes of address space for its shadow memory: the timeout alone
# there, and the plain build's run of this test holds the memory cap.)
cap=4000000
"$gan" info --no-bench | grep -q "sanitizers" && cap=unlimited
expect 0 "3 folder links to a folder listed already" -- \
  env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 GAN_CAP=$cap bash -c 'ulimit -v "$GAN_CAP"; timeout 60 "$@"' _ \
  "$gan" prepare "$images" -o "$work/looped.npy" --size 8 --threads 1
grep -q "4 images" "$work/out" && ok || fail "the looped folder did not give its 4 images once: $(cat "$work/out")"
# a FIFO as the split list (or the config) is refused, not read forever
mkfifo "$work/split.fifo" "$work/config.fifo"
expect 1 "split list $work/split.fifo: not a regular file" -- \
  timeout 20 "$gan" prepare "$images" -o "$work/split.npy" --size 8 --split train --split-file "$work/split.fifo"
expect 1 "$work/config.fifo: not a regular file" -- timeout 20 "$gan" train "$work/config.fifo"
expect 1 "$work/config.fifo: not a regular file" -- timeout 20 "$gan" selftest --config "$work/config.fifo"

# ---- 7. a kill -9 leaves the writers' unique temporary names (<file>.tmp.<pid>.<n>): removed at resume
run="$work/killed"
"$gan" train "$toy" train.iterations=2 log.checkpoint_every=2 "${quick[@]}" --out "$run" > /dev/null
stale=("$run/checkpoints/ckpt_0000000004.safetensors.tmp.12345.0" "$run/samples/iter_0000000004.png.tmp.12345.1"
       "$run/config.ini.tmp.12345.2" "$run/conv_algorithms.txt.tmp.12345")
kept=("$run/checkpoints/notes.tmp.txt" "$run/samples/mine.tmp.x" "$run/other.ini.tmp.1.2")
for f in "${stale[@]}" "${kept[@]}"; do echo half > "$f"; done
expect 0 "left by a run that was killed" -- "$gan" train --resume "$run" train.iterations=3 "${quick[@]}"
for f in "${stale[@]}"; do [ ! -e "$f" ] && ok || fail "the stale $f is still there"; done
for f in "${kept[@]}"; do [ -e "$f" ] && ok || fail "$f (no temporary name of the run's) was removed"; done

# ---- 8. a layer string that does not parse, or a device that cannot be had: nothing is made -----------
expect 1 "G: layer 2 'bogus': unknown layer" -- \
  "$gan" train "$toy" "model.generator=linear(128,bias) bogus" --device cpu --quiet --out "$work/bad_layer"
[ ! -e "$work/bad_layer" ] && ok || fail "a bad layer string left $work/bad_layer: $(ls -A "$work/bad_layer")"
expect 1 "D must give one value per sample" -- \
  "$gan" train "$toy" "model.discriminator=flatten linear(2)" --device cpu --quiet --out "$work/bad_shape"
[ ! -e "$work/bad_shape" ] && ok || fail "a D of the wrong output left $work/bad_shape"
expect 1 "--device nope" -- "$gan" train "$toy" --device nope --quiet --out "$work/bad_device"
[ ! -e "$work/bad_device" ] && ok || fail "a bad device left $work/bad_device: $(ls -A "$work/bad_device")"

echo "script_run_hostile: $passed passed, $failed failed"
[ "$failed" = 0 ]
