#!/usr/bin/env bash
# FID during a data-parallel run (docs/DESIGN.md section 14): rank 0 alone evaluates while the other
# ranks wait in a barrier, and no rank hangs. 2 ranks, a tiny model (8x8 gray images), EMA on,
# FID every 2 of 4 iterations with 2 samples:
#  - the run ends (within lib_dist.sh's 120 s), with one FID line per evaluation in the log and in
#    metrics.jsonl (rank 0's), best_fid.safetensors holding the smallest EMA FID logged;
#  - each FID equals the one-process run's within 1e-3 relative (same fixed noise; the weights
#    differ only by the order of the ranks' sums);
#  - a missing data.fid_stats on rank 0 stops every rank at start-up with one message.
# Needs mpirun, a gan built with MPI, /usr/bin/python3 (json) and the converted FID weights.
source "$(dirname "$0")/lib_dist.sh"
script_setup script_dist_fid
require_mpi
src="${GAN_SOURCE_DIR:?}"
weights="${GAN_FID_WEIGHTS:-$src/.whl/fid_inception_v3.safetensors}"
if [ ! -r "$weights" ]; then
  echo "skipped: no FID Inception weights at $weights (tools/setup.sh converts them)"; exit 77
fi
export GAN_FID_WEIGHTS="$weights"
py3=/usr/bin/python3
require_python "$py3" numpy

make_tiny_idx "$work/tiny.idx3-ubyte"
printf '%s\n' '[model]' 'nz = 8' 'generator = convt(8,4,1,0) bn relu convt(1,4,2,1) tanh' \
  'discriminator = conv(8,4,2,1) lrelu(0.2) conv(1,4,1,0) sigmoid' '[data]' "path = $work/tiny.idx3-ubyte" \
  'image_size = 8' 'channels = 1' '[train]' 'iterations = 4' 'batch_size = 8' 'ema_decay = 0.9' '[log]' \
  'every = 1' 'sample_every = 0' 'checkpoint_every = 0' 'fid_every = 2' 'fid_samples = 2' > "$work/tiny.ini"
"$py3" - "$work" <<'EOF' || fail "numpy could not write the statistics"
import numpy as np, sys
rng = np.random.default_rng(5)
x = np.abs(rng.normal(0.3, 0.2, size=(2100, 2048)))
np.savez(sys.argv[1] + "/stats.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
EOF

fids() { "$py3" -c "
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if 'fid' in r: print(r['iteration'], repr(r['fid']), repr(r['fid_ema']))" "$1"; }

status=0
ranks 2 "$gan" train "$work/tiny.ini" data.fid_stats="$work/stats.npz" --device cpu --quiet --out "$work/two" \
  > "$work/two.log" 2>&1 || status=$?
[ "$status" = 0 ] && ok || fail "2 ranks with FID: exit $status: $(tail -n 5 "$work/two.log")"
[ "$(grep -c "FID: .*FID_EMA" "$work/two.log")" = 2 ] && [ "$(fids "$work/two/metrics.jsonl" | wc -l)" = 2 ] && ok ||
  fail "2 ranks: want 2 FID lines in the log and metrics.jsonl (rank 0's): $(grep FID "$work/two.log")"
[ -f "$work/two/checkpoints/best_fid.safetensors" ] && ok || fail "2 ranks: no best_fid.safetensors"

"$gan" train "$work/tiny.ini" data.fid_stats="$work/stats.npz" --device cpu --quiet --out "$work/one" \
  > "$work/one.log" 2>&1 || fail "one process with FID: $(tail -n 5 "$work/one.log")"
"$py3" - <(fids "$work/one/metrics.jsonl") <(fids "$work/two/metrics.jsonl") <<'EOF' && ok || fail "the FIDs of 2 ranks and of one process differ"
import sys
one = [l.split() for l in open(sys.argv[1])]
two = [l.split() for l in open(sys.argv[2])]
assert len(one) == len(two) == 2, (one, two)
for a, b in zip(one, two):
    assert a[0] == b[0]
    for x, y in zip(a[1:], b[1:]):
        print("iteration %s: one process %s, 2 ranks %s" % (a[0], x, y))
        assert abs(float(x) - float(y)) <= 1e-3 * abs(float(x)), (x, y)
EOF

status=0
ranks 2 "$gan" train "$work/tiny.ini" data.fid_stats="$work/missing.npz" --device cpu --quiet --out "$work/bad" \
  > "$work/bad.log" 2>&1 || status=$?
[ "$status" = 1 ] && [ "$(grep -c "data.fid_stats = .*missing.npz: No such file" "$work/bad.log")" = 1 ] && ok ||
  fail "2 ranks, missing statistics: exit $status, want 1 and one message: $(cat "$work/bad.log")"

echo "script_dist_fid: $passed passed, $failed failed"
[ "$failed" = 0 ]
