#!/usr/bin/env bash
# FID during training and the EMA of G, end to end on a tiny model (8x8 gray images, G of 1,168
# weights) on the CPU:
#  - bad FID set-ups fail at start-up, before the run directory is made, with one message naming
#    the file and its key: no data.fid_stats, a missing statistics file, statistics of the wrong
#    dimension, no weights, a missing weights file, another network's weights; FID with toy data;
#  - a run with log.fid_every = 2, train.ema_decay = 0.9 and 2 FID samples writes FID of G and of the
#    EMA of G at iterations 2 and 4 into the log, metrics.jsonl and TensorBoard; best_fid.safetensors
#    holds the smallest EMA FID logged and its iteration, and outlives log.keep_checkpoints = 1; the
#    run trains the same weights as without FID;
#  - the logged value is gan sample --n 2 --ema --npy fed to gan fid (the same noise, eval-mode
#    batch norm, unrounded floats): the tracker measures what the tools measure;
#  - resume keeps the best: resumed to iteration 6, the best is the smallest of the three; a best
#    file whose value no later FID beats (its metadata set to 0.001) is kept as it is; one every FID
#    beats (1e30) is replaced by iteration 6's;
#  - gan sample/export --ema: refused for a checkpoint without EMA (version 2), which still loads;
#  - the EMA of G against torch 1.13: d * ema + (1 - d) * w over a run's stored averages, bit for bit.
# Needs /usr/bin/python3 with numpy, and the converted weights (.whl/fid_inception_v3.safetensors or
# $GAN_FID_WEIGHTS) for all but the start-up checks.
source "$(dirname "$0")/lib_script.sh"
script_setup fid_train
py3=/usr/bin/python3
require_python "$py3" numpy
src="${GAN_SOURCE_DIR:?}"
weights="${GAN_FID_WEIGHTS:-$src/.whl/fid_inception_v3.safetensors}"
unset GAN_FID_WEIGHTS

make_tiny_idx "$work/tiny.idx3-ubyte"
printf '%s\n' '[model]' 'nz = 8' 'generator = convt(8,4,1,0) bn relu convt(1,4,2,1) tanh' \
  'discriminator = conv(8,4,2,1) lrelu(0.2) conv(1,4,1,0) sigmoid' '[data]' "path = $work/tiny.idx3-ubyte" \
  'image_size = 8' 'channels = 1' '[train]' 'iterations = 4' 'batch_size = 8' 'ema_decay = 0.9' '[log]' \
  'every = 1' 'sample_every = 0' 'checkpoint_every = 2' 'keep_checkpoints = 1' 'fid_every = 2' \
  'fid_samples = 2' > "$work/tiny.ini"
# reference statistics of the right layout (random: the values only have to be comparable)
"$py3" - "$work" <<'EOF' || fail "numpy could not write the statistics"
import numpy as np, sys
rng = np.random.default_rng(5)
x = np.abs(rng.normal(0.3, 0.2, size=(2100, 2048)))
np.savez(sys.argv[1] + "/stats.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
np.savez(sys.argv[1] + "/small.npz", mu=np.zeros(10), sigma=np.eye(10))
EOF
stats="$work/stats.npz"
other_net="$src/tests/fixtures/conv_k3_s2_p0.safetensors"

# bad set-ups: exit 1, one message, nothing made
bad() { # bad NEEDLE key=value...
  local needle=$1; shift
  rm -rf "$work/bad"
  expect 1 "$needle" -- "$gan" train "$work/tiny.ini" "$@" --device cpu --quiet --out "$work/bad" &&
    { [ ! -e "$work/bad/checkpoints" ] && [ ! -e "$work/bad/metrics.jsonl" ] && ok ||
      fail "a refused FID set-up ($needle) left files: $(ls -R "$work/bad")"; }
}
bad "log.fid_every = 2 needs data.fid_stats" log.fid_weights="$other_net"
bad "data.fid_stats = $work/missing.npz: No such file" data.fid_stats="$work/missing.npz" log.fid_weights="$other_net"
bad "data.fid_stats: $work/small.npz: statistics of 10 features; the FID Inception's have 2048" \
  data.fid_stats="$work/small.npz" log.fid_weights="$other_net"
bad "needs the FID Inception weights: set log.fid_weights or \$GAN_FID_WEIGHTS" data.fid_stats="$stats"
bad "log.fid_weights = $work/none.safetensors: No such file" data.fid_stats="$stats" \
  log.fid_weights="$work/none.safetensors"
bad "log.fid_weights: $other_net: not a FID Inception weights file" data.fid_stats="$stats" log.fid_weights="$other_net"
expect 1 "data.format = toy gives 2-d points" -- "$gan" train "$src/tests/data/toy_ring.ini" log.fid_every=2 \
  --device cpu --quiet --out "$work/toy"

# a version 2 checkpoint (no EMA) loads; --ema is refused naming it
train_tiny_checkpoint "$work/plain"
"$py3" -c "import json, struct, sys; f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]; sys.exit(0 if json.loads(f.read(n))['__metadata__']['version'] == '2' else 1)" "$ckpt" &&
  ok || fail "a checkpoint without EMA is not version 2"
expect 0 "2 images" -- "$gan" sample "$ckpt" --n 2 --npy "$work/plain.npy" --device cpu
expect 1 "plain/checkpoints/ckpt_0000000002.safetensors holds no EMA of G" -- \
  "$gan" sample "$ckpt" --n 2 --ema --npy "$work/x.npy" --device cpu
expect 1 "holds no EMA of G" -- "$gan" export "$ckpt" --ema -o "$work/x.safetensors"
"$gan" sample --help | grep -q -- "--ema" && "$gan" export --help | grep -q -- "--ema" &&
  "$gan" train --help | grep -q "ema_decay" && "$gan" train --help | grep -q "fid_every" && "$gan" help | grep -q -- "--ema" &&
  ok || fail "--help texts lack --ema, train.ema_decay or log.fid_every"

# the EMA against PyTorch: checkpoints of every iteration of a run without FID; from each to the next,
# PyTorch's d * ema + (1 - d) * w on float32 tensors (torch.optim.swa_utils.get_ema_avg_fn's rule; not
# ema.mul_(d).add_(w, alpha=1 - d), whose add is one fused multiply-add on the CPU, nor the lerp of
# get_ema_multi_avg_fn) of the stored average and the next G gives the next stored average bit for bit
if "$py3" -c "import torch" 2>/dev/null; then
  "$gan" train "$work/tiny.ini" train.ema_decay=0.999 log.fid_every=0 train.iterations=3 log.checkpoint_every=1 \
    log.keep_checkpoints=3 --device cpu --quiet --out "$work/ema_torch" > "$work/ema_torch.log" 2>&1 &&
  "$py3" - "$work/ema_torch/checkpoints" <<'EOF' && ok || fail "the EMA of G differs from PyTorch's"
import json, struct, sys, torch
def tensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(t["shape"])
    return out
d = 0.999
ck = [tensors("%s/ckpt_%010d.safetensors" % (sys.argv[1], i)) for i in (1, 2, 3)]
names = [k[len("G_ema."):] for k in ck[0] if k.startswith("G_ema.")]
assert names, "no G_ema tensors"
for prev, cur in zip(ck, ck[1:]):
    for name in names:
        want = d * prev["G_ema." + name] + (1 - d) * cur["G." + name]
        got = cur["G_ema." + name]
        assert torch.equal(got, want), (name, (got - want).abs().max().item())
        assert not torch.equal(got, cur["G." + name])
print("EMA of G: PyTorch's update of %d tensors over 2 steps, bit for bit" % len(names))
EOF
else
  echo "note: /usr/bin/python3 has no torch (python3-torch): the PyTorch check of the EMA is left out"
fi

if [ ! -r "$weights" ]; then
  echo "note: no FID Inception weights at $weights (tools/setup.sh converts them): the training runs are left out"
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]; exit
fi
export GAN_FID_WEIGHTS="$weights"

# metadata text of a checkpoint; and a copy of a file with metadata values replaced
meta() { "$py3" -c "import json, struct, sys; f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]; print(json.loads(f.read(n))['__metadata__'].get(sys.argv[2], ''))" "$1" "$2"; }
set_meta() { # set_meta FILE KEY VALUE: the header's checksum recomputed as gan/safetensors.h defines it
  "$py3" - "$@" <<'EOF'
import json, struct, sys
path, key, value = sys.argv[1:]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
meta = header["__metadata__"]
meta[key] = value
table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
def crc32c(crc, b):
    c = crc ^ 0xFFFFFFFF
    for x in b:
        c = table[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
texts = []
for name in sorted((k for k in header if k != "__metadata__"), key=lambda k: k.encode()):
    t = header[name]
    texts += [name, t["dtype"]] + [str(d) for d in t["shape"]] + [str(o) for o in t["data_offsets"]]
for k in sorted(meta, key=lambda k: k.encode()):
    if k not in ("header_crc32c", "data_crc32c"):
        texts += [k, meta[k]]
crc = 0
for t in texts:
    crc = crc32c(crc, t.encode() + b"\0")
meta["header_crc32c"] = "%08x" % crc
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + data[8 + n:])
EOF
}
# fid_values FILE KEY: "iteration value" per FID line of metrics.jsonl
fid_values() { "$py3" -c "
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if sys.argv[2] in r: print(r['iteration'], repr(r[sys.argv[2]]))" "$1" "$2"; }

run="$work/run"
expect 0 "FID_EMA" -- "$gan" train "$work/tiny.ini" data.fid_stats="$stats" --device cpu --out "$run"
[ "$(grep -c "FID: .*FID_EMA: .*best" "$work/out")" = 2 ] && ok || fail "the log lacks two FID lines: $(grep FID "$work/out")"
fid=$(fid_values "$run/metrics.jsonl" fid)
ema=$(fid_values "$run/metrics.jsonl" fid_ema)
[ "$(echo "$fid" | cut -d' ' -f1 | tr '\n' ' ')" = "2 4 " ] && [ "$(echo "$ema" | cut -d' ' -f1 | tr '\n' ' ')" = "2 4 " ] &&
  ok || fail "metrics.jsonl: FID of G at [$fid], of EMA-G at [$ema]; want iterations 2 and 4"
best="$run/checkpoints/best_fid.safetensors"
[ -f "$best" ] && [ "$(ls "$run"/checkpoints/ckpt_*.safetensors | wc -l)" = 1 ] && ok ||
  fail "checkpoints/: $(ls "$run/checkpoints"): want best_fid.safetensors and one ckpt (keep_checkpoints = 1)"
# the best is the smallest EMA FID logged, at its iteration
check_best() { # check_best FILE VALUES_TEXT
  local want_value want_iteration
  read -r want_iteration want_value < <(echo "$2" | sort -g -k2 | head -n 1)
  "$py3" -c "import sys; sys.exit(0 if float('$(meta "$1" best_fid)') == float('$want_value') else 1)" &&
    [ "$(meta "$1" best_fid_iteration)" = "$want_iteration" ] && [ "$(meta "$1" best_fid_generator)" = G_ema ] &&
    ok || fail "$1: best_fid $(meta "$1" best_fid) at $(meta "$1" best_fid_iteration); want $want_value at $want_iteration of [$2]"
}
check_best "$best" "$ema"
[ "$(meta "$best" fid_samples)" = 2 ] && [ "$(meta "$best" version)" = 3 ] && ok ||
  fail "best_fid.safetensors: fid_samples $(meta "$best" fid_samples), version $(meta "$best" version)"
grep -aq "FID_EMA" "$run"/events.out.tfevents.* && ok || fail "no FID_EMA scalar in the TensorBoard events"
# evaluating changes nothing in training: the same run without FID writes the same tensors
data_section() { "$py3" -c 'import struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; sys.stdout.buffer.write(b[8+n:])' "$1"; }
"$gan" train "$work/tiny.ini" log.fid_every=0 --device cpu --quiet --out "$work/no_fid" > /dev/null 2>&1 &&
  cmp -s <(data_section "$work/no_fid/checkpoints/ckpt_0000000004.safetensors") \
    <(data_section "$run/checkpoints/ckpt_0000000004.safetensors") && ok ||
  fail "the run with FID trained other weights than the run without"
if "$gan" info --no-bench | grep -q "sanitizers"; then
  echo "note: a sanitizer build (3x slower): the cross-checks and resumes are left to the plain build's run of this test"
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]; exit
fi

# the logged value is what gan sample + gan fid measure at the last checkpoint
last="$run/checkpoints/ckpt_0000000004.safetensors"
# (EMA-G's only: G's goes through the same gan_trainer_generate, and each gan fid costs ~3.5 s here)
want=$(echo "$ema" | tail -n 1 | cut -d' ' -f2)
"$gan" sample "$last" --n 2 --ema --npy "$work/samples_ema.npy" --device cpu > /dev/null &&
  expect 0 "FID: " -- "$gan" fid "$work/samples_ema.npy" "$stats" --device cpu --batch 2 &&
  got=$(sed -n 's/^FID: //p' "$work/out") &&
  "$py3" -c "import sys; sys.exit(0 if abs($got - $want) <= 1e-6 * $want + 1e-6 else 1)" &&
  ok || fail "EMA-G at iteration 4: gan sample --ema + gan fid give ${got:-nothing}, the run logged $want"
expect 0 "EMA generator of" -- "$gan" export "$last" --ema -o "$work/ema_export.safetensors"
"$gan" export "$last" -o "$work/g_export.safetensors" > /dev/null &&
  ! cmp -s "$work/ema_export.safetensors" "$work/g_export.safetensors" && ok ||
  fail "gan export --ema wrote G's weights"

# resume: copies whose best no FID beats, and one every FID beats
cp -r "$run" "$work/kept"; cp -r "$run" "$work/beaten"
set_meta "$work/kept/checkpoints/best_fid.safetensors" best_fid 0.001
set_meta "$work/beaten/checkpoints/best_fid.safetensors" best_fid 1e30
expect 0 "FID: best so far" -- "$gan" train --resume "$run" train.iterations=6 --device cpu
ema=$(fid_values "$run/metrics.jsonl" fid_ema)
[ "$(echo "$ema" | cut -d' ' -f1 | tr '\n' ' ')" = "2 4 6 " ] && ok || fail "after resume: EMA FID at [$ema]"
check_best "$best" "$ema"
kept_iteration=$(meta "$work/kept/checkpoints/best_fid.safetensors" best_fid_iteration)
cp "$work/kept/checkpoints/best_fid.safetensors" "$work/kept_before.safetensors"
expect 0 "best so far 0.0010" -- "$gan" train --resume "$work/kept" train.iterations=6 --device cpu
cmp -s "$work/kept/checkpoints/best_fid.safetensors" "$work/kept_before.safetensors" && ok ||
  fail "a worse FID after resume replaced the best (best_fid $(meta "$work/kept/checkpoints/best_fid.safetensors" best_fid))"
grep -q '"iteration": 6, .*"best_fid": 0.001, "best_fid_iteration": '"$kept_iteration" "$work/kept/metrics.jsonl" && ok ||
  fail "metrics.jsonl after resume does not report the kept best: $(tail -n 1 "$work/kept/metrics.jsonl")"
expect 0 "FID: best so far" -- "$gan" train --resume "$work/beaten" train.iterations=6 --device cpu
check_best "$work/beaten/checkpoints/best_fid.safetensors" "$(fid_values "$work/beaten/metrics.jsonl" fid_ema | tail -n 1)"
# a checkpoint with EMA refused by a run without
expect 1 "ckpt_0000000006.safetensors holds an EMA of G and this run has train.ema_decay = 0" -- \
  "$gan" train --resume "$run" train.iterations=8 train.ema_decay=0 --device cpu --quiet

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
