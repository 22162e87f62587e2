#!/usr/bin/env bash
# A run directory one trainer owns, checkpoints that prove their integrity, and runs that clean up
# after a kill (issue "Reliability"), each as a hostile user would try it:
#   1. two trainers on one --out: the second (and a resume) refuses at once naming the holder; the
#      first's checkpoints verify after it stops on SIGTERM; SIGHUP stops a run like SIGTERM;
#   2. a checkpoint with damaged tensor data: sample and export refuse it naming the file; --resume
#      skips it, says why, moves it aside as .corrupt and resumes from the older one;
#   3. a version 1 checkpoint (no checksum) still loads, with a warning; metadata out of range or
#      inconsistent is refused; only checkpoint names gan writes are chosen and pruned;
#   4. after a kill: stale .tmp files removed at start-up, metrics.jsonl without the replayed
#      iterations (nor a cut line), the new events file starting with a SessionLog START;
#   5. data that cannot be decoded stops a new run before its directory exists.
source "$(dirname "$0")/lib_script.sh"
script_setup script_run_reliability
toy="$GAN_SOURCE_DIR/tests/data/toy_ring.ini"

# checkpoint_meta FILE KEY=VALUE...: rewrites a checkpoint's metadata (a value "-" removes the key);
# the tensor data, and so its checksum, stay as they are.
checkpoint_meta() {
  python3 - "$@" <<'PY'
import json, struct, sys
path, edits = sys.argv[1], sys.argv[2:]
blob = open(path, "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
meta = header["__metadata__"]
for e in edits:
    k, v = e.split("=", 1)
    if v == "-":
        meta.pop(k, None)
    else:
        meta[k] = v
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
PY
}

# damage FILE: 64 bytes of 0xff over the end of the tensor data
damage() { python3 -c "
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-100:-36] = b'\xff' * 64; open(p, 'wb').write(b)" "$1"; }

# wait_for FILE SECONDS: until FILE exists
wait_for() { for _ in $(seq 1 $((10 * $2))); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }

# ---- 1. one trainer per run directory -----------------------------------------------------------
run="$work/locked"
"$gan" train "$toy" train.iterations=100000000 log.every=1000 log.checkpoint_every=1000 --device cpu --quiet \
  --out "$run" > "$work/first.log" 2>&1 &
first=$!
if wait_for "$run/lock" 20 && wait_for "$run/metrics.jsonl" 20; then
  expect 1 "is in use by another gan train (pid $first" -- \
    "$gan" train "$toy" train.iterations=10 --device cpu --quiet --out "$run"
  expect 1 "is in use by another gan train (pid $first" -- "$gan" train --resume "$run" --device cpu --quiet
else
  fail "the first trainer did not start (no $run/lock): $(cat "$work/first.log")"
fi
kill -TERM "$first"; wait "$first"; status=$?
[ "$status" = 130 ] && ok || fail "the first trainer exited $status after SIGTERM, want 130: $(tail -n 3 "$work/first.log")"
last=$(ls "$run"/checkpoints/ckpt_*.safetensors 2>/dev/null | tail -n 1)
[ -n "$last" ] && expect 0 "gan sample" -- "$gan" sample "$last" --npy "$work/points.npy" --n 8 --device cpu
# the lock went with the process: the directory can be resumed now
expect 0 "resumed from" -- "$gan" train --resume "$run" train.iterations=0 train.epochs=1 --device cpu --quiet \
  log.every=100000 log.checkpoint_every=0

run="$work/hangup"
"$gan" train "$toy" train.iterations=100000000 log.every=1000 --device cpu --quiet --out "$run" \
  > "$work/hangup.log" 2>&1 &
pid=$!
if wait_for "$run/metrics.jsonl" 20; then
  kill -HUP "$pid"; wait "$pid"; status=$?
  [ "$status" = 130 ] && ok || fail "SIGHUP: exited $status, want 130"
  grep -q "hung up (the terminal closed) after iteration" "$work/hangup.log" && ok || fail "SIGHUP: $(tail -n 2 "$work/hangup.log")"
  ls "$run"/checkpoints/ckpt_*.safetensors > /dev/null 2>&1 && ok || fail "SIGHUP wrote no checkpoint"
else
  kill "$pid"; fail "the SIGHUP run did not start"
fi

# ---- 2. damaged checkpoints ------------------------------------------------------------------------
run="$work/damaged"
"$gan" train "$toy" train.iterations=6 log.every=1 log.checkpoint_every=2 log.keep_checkpoints=5 --device cpu \
  --quiet --out "$run" > /dev/null
ck="$run/checkpoints"
damage "$ck/ckpt_0000000006.safetensors"
expect 1 "ckpt_0000000006.safetensors: the tensor data does not match its checksum" -- \
  "$gan" sample "$ck/ckpt_0000000006.safetensors" --npy "$work/x.npy" --device cpu
expect 1 "does not match its checksum" -- "$gan" export "$ck/ckpt_0000000006.safetensors" -o "$work/g.safetensors"
expect 0 "skipping $ck/ckpt_0000000006.safetensors: $ck/ckpt_0000000006.safetensors: the tensor data does not match" -- \
  "$gan" train --resume "$run" train.iterations=8 --device cpu --quiet
grep -q "resumed from $ck/ckpt_0000000004.safetensors at iteration 4" "$work/out" && ok || fail "resume did not start from 4: $(cat "$work/out")"
[ -f "$ck/ckpt_0000000006.safetensors.corrupt" ] && ok || fail "the damaged checkpoint was not moved aside"
expect 0 "" -- "$gan" sample "$ck/ckpt_0000000006.safetensors" --npy "$work/x.npy" --device cpu # the resumed run's own
expect 0 "" -- "$gan" sample "$ck/ckpt_0000000008.safetensors" --npy "$work/x.npy" --device cpu

# ---- 3. versions, metadata, names ---------------------------------------------------------------
cp "$ck/ckpt_0000000008.safetensors" "$work/v1.safetensors"
checkpoint_meta "$work/v1.safetensors" version=1 data_crc32c=-
expect 0 "a version 1 checkpoint carries no checksum" -- "$gan" sample "$work/v1.safetensors" --npy "$work/x.npy" --device cpu
cp "$work/v1.safetensors" "$work/v2_no_crc.safetensors"; checkpoint_meta "$work/v2_no_crc.safetensors" version=2
expect 1 "a version 2 checkpoint without its checksum" -- "$gan" sample "$work/v2_no_crc.safetensors" --npy "$work/x.npy"
# a header edited in place, even to values in range, no longer matches its checksum
cp "$ck/ckpt_0000000008.safetensors" "$work/meta.safetensors"; checkpoint_meta "$work/meta.safetensors" iteration=7
expect 1 "the header (tensor names, shapes, offsets or metadata) does not match its checksum" -- \
  "$gan" sample "$work/meta.safetensors" --npy "$work/x.npy" --device cpu
python3 - "$ck/ckpt_0000000008.safetensors" "$work/swapped.safetensors" <<'PY'
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
# two tensors of one size exchange their data: the data's checksum still holds, the header's not
by_size = {}
for name, t in header.items():
    if name != "__metadata__":
        by_size.setdefault(t["data_offsets"][1] - t["data_offsets"][0], []).append(name)
a, b = next(v for v in by_size.values() if len(v) >= 2)[:2]
header[a]["data_offsets"], header[b]["data_offsets"] = header[b]["data_offsets"], header[a]["data_offsets"]
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
PY
expect 1 "does not match its checksum" -- "$gan" sample "$work/swapped.safetensors" --npy "$work/x.npy" --device cpu
# a resume that changes train.d_steps is told so, and the (sound) checkpoints are not moved aside
before=$(ls "$ck" | grep -c corrupt)
expect 1 "was made with train.d_steps = 1 and this run has train.d_steps = 2" -- \
  "$gan" train --resume "$run" train.iterations=12 train.d_steps=2 --device cpu --quiet
[ "$(ls "$ck" | grep -c corrupt)" = "$before" ] && ok || fail "a sound checkpoint was moved aside: $(ls "$ck")"
[ -f "$ck/ckpt_0000000008.safetensors" ] && ok || fail "the newest checkpoint is gone after a d_steps override"
# an output that is the checkpoint being read is refused, and the checkpoint stays
cp "$ck/ckpt_0000000008.safetensors" "$work/self.safetensors"
expect 1 "is the input" -- "$gan" export "$work/self.safetensors" -o "$work/self.safetensors"
expect 1 "is the input" -- "$gan" sample "$work/self.safetensors" --npy "$work/self.safetensors" --device cpu
cmp -s "$work/self.safetensors" "$ck/ckpt_0000000008.safetensors" && ok || fail "an output replaced its own input"
# a stored config whose model does not build is named with the file
cp "$ck/ckpt_0000000008.safetensors" "$work/model.safetensors"
config=$(python3 -c "
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); (n,) = struct.unpack('<Q', b[:8])
print(json.loads(b[8:8 + n])['__metadata__']['config'])" "$work/model.safetensors")
checkpoint_meta "$work/model.safetensors" "config=$(printf '%s\n' "$config" | sed 's/^generator = .*/generator = bogus(3)/')" \
  header_crc32c=-
expect 1 "$work/model.safetensors: its stored config" -- "$gan" sample "$work/model.safetensors" --npy "$work/x.npy" \
  --device cpu
# without the header's checksum (files written before it existed) the counters are range-checked
for edit in iteration=-5 adam_step_g=-1 adam_step_d=99 data_index=-1; do
  cp "$ck/ckpt_0000000008.safetensors" "$work/meta.safetensors"
  checkpoint_meta "$work/meta.safetensors" "$edit" header_crc32c=-
  expect 1 "metadata" -- "$gan" sample "$work/meta.safetensors" --npy "$work/x.npy" --device cpu
done
cp "$ck/ckpt_0000000008.safetensors" "$work/meta.safetensors"
checkpoint_meta "$work/meta.safetensors" iteration=99999999999999999999 header_crc32c=-
expect 1 "metadata 'iteration' is missing or not an integer in range" -- "$gan" sample "$work/meta.safetensors" --npy "$work/x.npy"

# names gan did not write are neither chosen nor pruned; a canonical name whose metadata disagrees
# with it is moved aside
cp "$ck/ckpt_0000000004.safetensors" "$ck/ckpt_99.safetensors"
cp "$ck/ckpt_0000000004.safetensors" "$ck/ckpt_9999999999999.safetensors"
expect 0 "its metadata says iteration 4, its name 9999999999999" -- \
  "$gan" train --resume "$run" train.iterations=12 log.keep_checkpoints=2 --device cpu --quiet
grep -q "resumed from $ck/ckpt_0000000008.safetensors at iteration 8" "$work/out" && ok || fail "resume did not start from 8"
[ -f "$ck/ckpt_99.safetensors" ] && ok || fail "ckpt_99.safetensors (not a name gan writes) was touched"
[ -f "$ck/ckpt_9999999999999.safetensors.corrupt" ] && ok || fail "ckpt_9999999999999 was not moved aside"
kept=$(cd "$ck" && ls ckpt_0*.safetensors | tr '\n' ' ')
[ "$kept" = "ckpt_0000000010.safetensors ckpt_0000000012.safetensors " ] && ok || fail "pruning kept: $kept"

# ---- 4. after a kill ------------------------------------------------------------------------------
run="$work/killed"
"$gan" train "$toy" train.iterations=6 log.every=1 log.checkpoint_every=2 log.keep_checkpoints=5 --device cpu \
  --quiet --out "$run" > /dev/null
# as a kill -9 leaves it: iteration 6's checkpoint never made it, a half-written one of 6 did,
# metrics.jsonl holds 5 and 6 and a cut line
rm "$run/checkpoints/ckpt_0000000006.safetensors"
head -c 1000 "$run/checkpoints/ckpt_0000000004.safetensors" > "$run/checkpoints/ckpt_0000000006.safetensors.tmp"
printf '{"iteration": 7, "epoch": 0, "loss_d"' >> "$run/metrics.jsonl"
expect 0 "left by a run that was killed" -- "$gan" train --resume "$run" train.iterations=8 --device cpu --quiet
[ ! -e "$run/checkpoints/ckpt_0000000006.safetensors.tmp" ] && ok || fail "the stale .tmp is still there"
its=$(python3 -c "
import json, sys; print(','.join(str(json.loads(l)['iteration']) for l in open(sys.argv[1])))" "$run/metrics.jsonl")
[ "$its" = "1,2,3,4,5,6,7,8" ] && ok || fail "metrics.jsonl iterations after the resume: $its"
newest=$(ls "$run"/events.out.tfevents.* | tail -n 1)
python3 - "$newest" <<'PY' && ok || fail "the resumed events file does not start with SessionLog START at step 5"
import struct, sys
blob = open(sys.argv[1], "rb").read()
def records(b):
    at = 0
    while at < len(b):
        (n,) = struct.unpack("<Q", b[at:at + 8]); yield b[at + 12:at + 12 + n]; at += 16 + n
# the second record: Event{wall_time (1, fixed64), step (2, varint) = 5, session_log (7) = {status (1) = 1}}
second = list(records(blob))[1]
assert second[0] == 0x09 and second[9] == 0x10 and second[10] == 5, second[:12]
assert second[11:] == bytes([0x3a, 0x02, 0x08, 0x01]), second[11:]
PY

# ---- 5. undecodable data: nothing is written --------------------------------------------------------
mkdir -p "$work/bad_images"
for i in 1 2 3; do echo "not an image" > "$work/bad_images/$i.png"; done
expect 1 "" -- "$gan" train "$GAN_SOURCE_DIR/configs/dcgan_fmnist32.ini" "data.path=$work/bad_images" \
  data.format=folder train.batch_size=2 --device cpu --quiet --out "$work/never"
[ ! -e "$work/never" ] && ok || fail "a run whose data does not decode left $work/never"

echo "script_run_reliability: $passed passed, $failed failed"
[ "$failed" = 0 ]
