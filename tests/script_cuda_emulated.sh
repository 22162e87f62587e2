#!/usr/bin/env bash
# The CUDA backend whole on an emulated device (libgan_cuda_emu.so: its host sources and kernels
# over tests/emu_cuda_runtime.cpp's CUDA runtime, cuBLAS and cuDNN on the CPU), loaded through
# GAN_CUDA_MODULE: what the backend decides and calls is run for real and compared with the CPU
# backend, in CI, without a GPU.
#   1. gan selftest --device cuda (every op and one dcgan_fmnist32 iteration at batch 2 against
#      the CPU) in the set-ups that take the backend's different paths: fp32 deterministic (cuDNN
#      in NCHW), the sub-pixel backward-data and im2col backward-filter forced, bf16 with cuDNN
#      in NHWC on every pass (BF16 copies, conv_grads' shared copy), bf16 as timed (im2col wins the
#      backward-filter under the emulated clock: conv_grads' two-op path), tf32 in NHWC and tf32 as
#      timed (both with FP32 NHWC edges between layers), the kept copies' rows where cuDNN runs
#      every pass in NHWC; test_gpu_ops, the GPU-only test, as timed and with cuDNN on every pass;
#      gan bench ops in bf16 and tf32 (its rows' x/it and total, the kept forms and stored rows among
#      them; its GEMM peak at 64^3: GAN_BENCH_PEAK_N); test_gpu_dist_one_rank, the data-parallel
#      path on one rank.
#   2. training a small DCGAN: the iteration captured as a CUDA graph and replayed gives the losses
#      of the same iterations launched op by op, bit for bit; a rerun (the stored algorithm
#      choices reused) too, and so do 3 iterations resumed to 6 (the device-side counters restored)
#      and a run logged every 3rd iteration (uploads queued behind replays: the staging waits);
#      the CPU's within 1e-3; bf16 trains with finite losses near fp32's; bf16 with cuDNN on every
#      pass keeps copies, and its captured iteration matches its op-by-op one bit for bit, as does
#      its run with the real batch through FP32 NCHW instead of straight into D's first layer's
#      kept copy (GAN_CUDA_KEEP_IMAGES=never), as in tf32 with cuDNN in NHWC on every pass; so does
#      tf32 with FP32 NHWC edges, near the CPU's with them and without, and its run resumed from
#      the checkpoint's algorithm choices alone equals the one run.
#   3. the side stream: each precision and storage trains bit for bit as on one stream, whatever
#      order the emulated device runs the two streams' work in.
# Each run keeps its algorithm choices in a folder of its own (GAN_CACHE_DIR). Skips where this
# build has no CUDA backend (the module is built beside it).
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_cuda_emulated
module=$GAN_BINARY_DIR/libgan_cuda_emu.so
if [ ! -f "$module" ]; then
  echo "skipped: $module was not built (a build without the CUDA backend)"
  exit 77
fi
export GAN_CUDA_MODULE=$module
unset GAN_CUDA_SUBPIXEL GAN_CUDA_IM2COL GAN_CUDA_NHWC

expect 0 "gan emulated device" -- "$gan" info --no-bench

# ---- 1. selftest in each set-up ----------------------------------------------------------------
# selftest NAME [VAR=VALUE ...] -- [key=value ...]
selftest() {
  local name=$1; shift
  local vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  if env "${vars[@]}" GAN_CACHE_DIR="$work/cache-$name" "$gan" selftest --device cuda --batch 2 \
       --config "$GAN_SOURCE_DIR/configs/dcgan_fmnist32.ini" "$@" >"$work/selftest-$name.out" 2>&1 &&
     grep -q '^gan selftest: ops within tolerance, iteration within tolerance$' "$work/selftest-$name.out"; then
    ok
  else
    fail "selftest $name: $(grep -E 'FAIL|error' "$work/selftest-$name.out" | head -n 5)" \
      "$(tail -n 2 "$work/selftest-$name.out")"
  fi
}
selftest fp32 -- 
selftest fp32-forms GAN_CUDA_SUBPIXEL=always GAN_CUDA_IM2COL=always --
selftest bf16-cudnn GAN_CUDA_SUBPIXEL=never GAN_CUDA_IM2COL=never -- train.precision=bf16
selftest bf16 -- train.precision=bf16 train.deterministic=false
selftest tf32-nhwc GAN_CUDA_NHWC=always GAN_CUDA_SUBPIXEL=never GAN_CUDA_IM2COL=never -- train.precision=tf32
selftest tf32 -- train.precision=tf32 train.deterministic=false
# the set-ups did take their paths: the fused ops and conv_grads compared in each
for name in fp32 bf16-cudnn tf32-nhwc; do
  grep -q '^conv_grads bwd-data b1 \[8,16,16,16\] k4 s2 p1 dw .* ok$' "$work/selftest-$name.out" && ok ||
    fail "selftest $name compared no conv_grads"
done
# with cuDNN on every pass in NHWC, the layers' forwards keep their input's copy for the backward
for name in bf16-cudnn tf32-nhwc; do
  for row in 'conv_keep_pass fwd lrelu' 'conv_grads bwd-data b1 kept' 'conv_keep_pass bwd-data relu' \
             'conv_grads fwd b0 kept'; do
    grep -q "^$row \[8,16,16,16\] k4 s2 p1.* ok$" "$work/selftest-$name.out" && ok ||
      fail "selftest $name compared no $row"
  done
done

# test_gpu_ops (ctest's gpu label, skipped without a device) on the emulated one: selftest in fp32
# and tf32, repeats bit for bit, conv_grads the two ops' bits; again with cuDNN on every pass
# (conv_grads' shared copy in bf16)
for forms in timed never; do
  vars=(GAN_CACHE_DIR="$work/cache-gpu-ops-$forms")
  [ $forms = never ] && vars+=(GAN_CUDA_SUBPIXEL=never GAN_CUDA_IM2COL=never)
  if env "${vars[@]}" "$GAN_BINARY_DIR/tests/test_gpu_ops" >"$work/gpu-ops-$forms.out" 2>&1; then ok
  else
    fail "test_gpu_ops ($forms forms of ours): $(grep -E 'FAIL' "$work/gpu-ops-$forms.out" | head -n 3)" \
      "$(tail -n 1 "$work/gpu-ops-$forms.out")"
  fi
done
grep -q '^bf16: kept copies x [1-9][0-9]* bytes, dy [1-9]' "$work/gpu-ops-never.out" && ok ||
  fail "test_gpu_ops with cuDNN on every pass kept no copies in bf16: $(grep 'kept copies' "$work/gpu-ops-never.out")"
# its images test forces cuDNN in NHWC itself: the images' copy is compared in tf32 and bf16
for precision in tf32 bf16; do
  grep -q "^$precision: images kept [1-9][0-9]* bytes" "$work/gpu-ops-timed.out" && ok ||
    fail "test_gpu_ops kept no copy of the images in $precision: $(grep 'images kept' "$work/gpu-ops-timed.out")"
done

# gan bench ops on the emulated device (its GEMM peak made small: GAN_BENCH_PEAK_N), bf16 with
# cuDNN on every pass and the tensors between layers FP32 NCHW: the kept forms get rows, and the
# iteration counts them in place of the plain ops (x/it: D's forwards 3, its backwards 2, on the
# kept copy; the plain ones 0); the real batch through FP32 NCHW (GAN_CUDA_KEEP_IMAGES=never): no
# images rows
if env GAN_CACHE_DIR="$work/cache-bench" GAN_BENCH_PEAK_N=64 GAN_CUDA_SUBPIXEL=never GAN_CUDA_IM2COL=never \
     GAN_CUDA_STORAGE=never GAN_CUDA_KEEP_IMAGES=never "$gan" bench ops --device cuda --configs dcgan_fmnist32 --batch 2 --runs 1 \
     --warmup 0 --min-ms 0 train.precision=bf16 train.deterministic=false >"$work/bench-ops.out" 2>&1; then
  bench_x_it "$work/bench-ops.out" 'conv fwd+lrelu kept|D.0|3' 'conv bwd-filter kept|D.0|2' \
    'conv bwd-filter|D.0|0' 'conv fwd kept|D.2|3' 'conv grads kept|D.2|2' 'conv grads|D.2|0' 'conv fwd|D.2|0' \
    'convt fwd kept|G.3|1' 'convt grads kept|G.3|1' 'convt grads|G.3|0' 'convt fwd+tanh kept|G.9|1'
  bench_total "$work/bench-ops.out"
  ! grep -qE '^(images kept|conv fwd\+lrelu images) ' "$work/bench-ops.out" && ok ||
    fail "bench ops: images rows with GAN_CUDA_KEEP_IMAGES=never: $(grep -E 'images' "$work/bench-ops.out")"
else
  fail "gan bench ops on the emulated device: $(tail -n 3 "$work/bench-ops.out")"
fi
# ... and with the tensors between layers stored NHWC (the default in bf16 and tf32): the rows of
# those layers run the stored ops (their shapes marked bf16, or nhwc for FP32); only D's first
# layer, whose input is the FP32 image, keeps a copy; the batch norms beside the whole-input layers
# mix the two storages; each model's weight copies are one op per forward (G 1, D 3); D's forward
# on the real batch runs on the copy the uint8 batch is converted into (images kept, x/it 1).
# bench_stored PRECISION MARK: gan bench ops, its counts and the rows' marks
bench_stored() {
  local precision=$1 mark=$2 out=$work/bench-ops-$1.out
  if env GAN_CACHE_DIR="$work/cache-bench-$precision" GAN_BENCH_PEAK_N=64 "$gan" bench ops --device cuda \
       --configs dcgan_fmnist32 --batch 2 --runs 1 --warmup 0 --min-ms 0 train.precision="$precision" \
       train.deterministic=false >"$out" 2>&1; then
    bench_x_it "$out" 'conv fwd+lrelu kept|D.0|2' 'images kept|D.0|1' 'conv fwd+lrelu images|D.0|1' \
      'conv bwd-filter kept|D.0|2' 'conv fwd|D.2|3' 'conv grads|D.2|2' \
      'conv fwd kept|D.2|' 'bn+lrelu fwd-train|D.3|3' 'bn+lrelu bwd|D.3|3' 'bn+lrelu fwd-train|D.6|3' \
      'bn+relu fwd-train|G.1|1' 'convt fwd|G.3|1' 'convt grads|G.3|1' 'convt fwd kept|G.3|' 'convt fwd+tanh|G.9|1' \
      'conv weight copies|G|1' 'conv weight copies|D|3'
    bench_total "$out"
    for row in 'conv fwd +D\.2 ' 'bn\+lrelu fwd-train +D\.3 ' 'bn\+relu fwd-train +G\.1 ' 'convt fwd +G\.3 '; do
      grep -qE "^$row +\[[^ ]+( k[0-9]+s[0-9]+p[0-9]+)? $mark +[0-9]" "$out" && ok ||
        fail "bench ops $precision: the row '$row' is not marked $mark: $(grep -E "^$row" "$out")"
    done
  else
    fail "gan bench ops on the emulated device, $precision with stored edges: $(tail -n 3 "$out")"
  fi
}
bench_stored bf16 bf16
bench_stored tf32 nhwc

# test_gpu_dist_one_rank: the data-parallel path on one rank (NCCL emulated: a communicator of
# one) trains bit for bit like the backend without a process group, sync BN and graphs included
if GAN_CACHE_DIR="$work/cache-dist" "$GAN_BINARY_DIR/tests/test_gpu_dist_one_rank" >"$work/gpu-dist.out" 2>&1; then ok
else
  fail "test_gpu_dist_one_rank: $(grep -E 'FAIL|skipped' "$work/gpu-dist.out" | head -n 3)" \
    "$(tail -n 1 "$work/gpu-dist.out")"
fi

# ---- 2. training ----------------------------------------------------------------------------------
make_tiny_idx "$work/tiny.idx3-ubyte"
printf '%s\n' '[model]' 'nz = 8' 'generator = convt(16,4,1,0) bn relu convt(1,4,2,1) tanh' \
  'discriminator = conv(16,4,2,1) lrelu(0.2) conv(32,4,1,0) bn lrelu(0.2) conv(1,1,1,0) sigmoid' \
  '[data]' "path = $work/tiny.idx3-ubyte" 'image_size = 8' 'channels = 1' \
  '[train]' 'iterations = 6' 'batch_size = 8' 'seed = 5' \
  '[log]' 'every = 1' 'sample_every = 0' 'checkpoint_every = 0' > "$work/tiny.ini"
# losses RUN_DIR: the run's logged losses and D outputs, one line per logged iteration, exact
losses() {
  python3 -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(repr(r["loss_d"]), repr(r["loss_g"]), repr(r["d_x"]), repr(r["d_g_z1"]))' "$1/metrics.jsonl"
}
# train NAME DEVICE [key=value ...]: the run's losses, one line per iteration, in $work/NAME.losses
# (train_env: more environment, as words; train_ini: the config)
train_env=""
train_ini=$work/tiny.ini
train() {
  local name=$1 device=$2; shift 2
  # shellcheck disable=SC2086 # train_env is words
  if env GAN_CACHE_DIR="$work/cache-train" $train_env "$gan" train "$train_ini" --device "$device" \
       --out "$work/run-$name" "$@" >"$work/train-$name.out" 2>&1; then
    losses "$work/run-$name" >"$work/$name.losses"
    [ "$(wc -l < "$work/$name.losses")" = 6 ] && ok ||
      fail "train $name: $(wc -l < "$work/$name.losses") logged iterations"
  else
    fail "train $name: $(tail -n 3 "$work/train-$name.out")"
    : >"$work/$name.losses"
  fi
}
train graph cuda
train eager cuda train.graph=false
train again cuda
train cpu cpu
train bf16 cuda train.precision=bf16
# tf32: FP32 NHWC edges between layers (G's two after its first layer), and without them
train tf32 cuda train.precision=tf32
train tf32-eager cuda train.precision=tf32 train.graph=false
train_env="GAN_CUDA_STORAGE=never"
train tf32-f32edges cuda train.precision=tf32
train_env=""
# bf16 with cuDNN on every pass (NHWC): the layers' forwards keep their input's copy for the
# backward-filter (conv_keep_pass)
train_env="GAN_CACHE_DIR=$work/cache-train-cudnn GAN_CUDA_SUBPIXEL=never GAN_CUDA_IM2COL=never"
train bf16-kept cuda train.precision=bf16
train bf16-kept-eager cuda train.precision=bf16 train.graph=false
# ... its real batch through FP32 NCHW and the forward's copy, not straight into that copy
train_env="$train_env GAN_CUDA_KEEP_IMAGES=never"
train bf16-kept-raw cuda train.precision=bf16
# tf32 with cuDNN in NHWC on every pass (FP32 copies), the real batch straight into D's first
# layer's copy and through FP32 NCHW
train_env="GAN_CACHE_DIR=$work/cache-train-tf32-nhwc GAN_CUDA_NHWC=always GAN_CUDA_SUBPIXEL=never GAN_CUDA_IM2COL=never"
train tf32-kept cuda train.precision=tf32
train_env="$train_env GAN_CUDA_KEEP_IMAGES=never"
train tf32-kept-raw cuda train.precision=tf32
train_env=""
# resumed: 3 iterations, then --resume to 6 (the device-side counters restored from the checkpoint)
if GAN_CACHE_DIR="$work/cache-train" "$gan" train "$work/tiny.ini" train.iterations=3 --device cuda --quiet \
     --out "$work/run-resumed" >"$work/train-half.out" 2>&1 &&
   GAN_CACHE_DIR="$work/cache-train" "$gan" train --resume "$work/run-resumed" train.iterations=6 --device cuda \
     --quiet >"$work/train-resumed.out" 2>&1; then
  losses "$work/run-resumed" >"$work/resumed.losses"
  cmp -s "$work/graph.losses" "$work/resumed.losses" && ok ||
    fail "3 iterations and a resume to 6 differ from 6 in one run:" \
      "$(diff "$work/graph.losses" "$work/resumed.losses" | head -n 4)"
else
  fail "the resumed run: $(tail -n 3 "$work/train-half.out" "$work/train-resumed.out")"
fi
# tf32 resumed with a cache emptied between the two runs: the checkpoint's choices, those of its
# stored plans (stored=true) among them, are read back on resume (a line that did not parse would
# fail it), and the run goes on as the one run did
if GAN_CACHE_DIR="$work/cache-tf32-resume" "$gan" train "$work/tiny.ini" train.iterations=3 train.precision=tf32 \
     --device cuda --quiet --out "$work/run-tf32-resumed" >"$work/train-tf32-half.out" 2>&1 &&
   rm -rf "$work/cache-tf32-resume" &&
   GAN_CACHE_DIR="$work/cache-tf32-resume" "$gan" train --resume "$work/run-tf32-resumed" train.iterations=6 \
     --device cuda --quiet >"$work/train-tf32-resumed.out" 2>&1; then
  losses "$work/run-tf32-resumed" >"$work/tf32-resumed.losses"
  cmp -s "$work/tf32.losses" "$work/tf32-resumed.losses" && ok ||
    fail "tf32: 3 iterations and a resume to 6 differ from 6 in one run:" \
      "$(diff "$work/tf32.losses" "$work/tf32-resumed.losses" | head -n 4)"
  grep -q ' stored=true .*layout=nhwc' "$work/run-tf32-resumed/conv_algorithms.txt" && ok ||
    fail "tf32: the run kept no choice of a stored plan"
else
  fail "the resumed tf32 run: $(tail -n 3 "$work/train-tf32-half.out" "$work/train-tf32-resumed.out")"
fi
# logged every 3rd iteration: nothing waits for the device between logs, so the batches' uploads
# through the two pinned staging buffers queue up behind the replays (the emulated streams run
# only when waited on); each must still be read before its buffer is reused
if GAN_CACHE_DIR="$work/cache-train" "$gan" train "$work/tiny.ini" log.every=3 --device cuda --quiet \
     --out "$work/run-sparse" >"$work/train-sparse.out" 2>&1; then
  losses "$work/run-sparse" >"$work/sparse.losses"
  sed -n '3p;6p' "$work/graph.losses" | cmp -s - "$work/sparse.losses" && ok ||
    fail "logged every 3rd iteration, iterations 3 and 6 differ from the run logged every one"
else
  fail "the run logged every 3rd iteration: $(tail -n 3 "$work/train-sparse.out")"
fi
cmp -s "$work/graph.losses" "$work/eager.losses" && ok ||
  fail "the captured iteration's losses differ from the op-by-op ones:" \
    "$(paste -d'|' "$work/graph.losses" "$work/eager.losses" | head -n 3)"
cmp -s "$work/graph.losses" "$work/again.losses" && ok || fail "a rerun's losses differ from the first run's"
cmp -s "$work/tf32.losses" "$work/tf32-eager.losses" && ok ||
  fail "tf32 with FP32 NHWC edges: the captured iteration's losses differ from the op-by-op ones:" \
    "$(paste -d'|' "$work/tf32.losses" "$work/tf32-eager.losses" | head -n 3)"
grep -q "^activations: 2 of G's and 0 of D's layer outputs stored FP32 NHWC" "$work/train-tf32.out" && ok ||
  fail "tf32 stored no FP32 NHWC edges: $(grep -i stored "$work/train-tf32.out")"
! grep -q '^activations:' "$work/train-tf32-f32edges.out" && ok ||
  fail "GAN_CUDA_STORAGE=never still stored edges: $(grep '^activations:' "$work/train-tf32-f32edges.out")"
cmp -s "$work/bf16-kept.losses" "$work/bf16-kept-eager.losses" && ok ||
  fail "bf16 with kept copies: the captured iteration's losses differ from the op-by-op ones:" \
    "$(paste -d'|' "$work/bf16-kept.losses" "$work/bf16-kept-eager.losses" | head -n 3)"
for name in bf16-kept tf32-kept; do
  cmp -s "$work/$name.losses" "$work/$name-raw.losses" && ok ||
    fail "$name with the real batch straight into D's first layer's copy: the losses differ from those" \
      "through FP32 NCHW: $(paste -d'|' "$work/$name.losses" "$work/$name-raw.losses" | head -n 3)"
  grep -q "^real batch: converted on the device straight into" "$work/train-$name.out" && ok ||
    fail "$name with cuDNN on every pass did not convert the real batch into D's first layer's copy"
  ! grep -q "^real batch:" "$work/train-$name-raw.out" && ok ||
    fail "$name: GAN_CUDA_KEEP_IMAGES=never still converted the real batch into D's first layer's copy"
done
grep -q '^  conv kept copies ' "$work/train-bf16-kept.out" && ok ||
  fail "bf16 with cuDNN on every pass kept no copies: $(grep -A12 '^memory' "$work/train-bf16-kept.out")"
grep -q 'algo=' "$work/cache-train/conv_algorithms.txt" 2>/dev/null && ok || fail "no stored algorithm choices"
# close to the CPU: within 1e-3 (relative, 1e-4 absolute) in fp32; bf16 within 0.05 and finite
close() { # close A B RTOL ATOL
  python3 -c 'import math, sys
a = [list(map(float, l.split())) for l in open(sys.argv[1])]
b = [list(map(float, l.split())) for l in open(sys.argv[2])]
rtol, atol = float(sys.argv[3]), float(sys.argv[4])
assert len(a) == len(b) == 6, (len(a), len(b))
for i, (x, y) in enumerate(zip(a, b)):
    for u, v in zip(x, y):
        assert math.isfinite(u) and abs(u - v) <= atol + rtol * abs(v), f"iteration {i + 1}: {x} vs {y}"' "$@"
}
close "$work/graph.losses" "$work/cpu.losses" 1e-3 1e-4 2>"$work/close.err" && ok ||
  fail "emulated CUDA vs CPU (fp32): $(tail -n 1 "$work/close.err")"
close "$work/bf16.losses" "$work/cpu.losses" 0.05 0.02 2>"$work/close.err" && ok ||
  fail "emulated CUDA bf16 vs CPU: $(tail -n 1 "$work/close.err")"
close "$work/bf16-kept.losses" "$work/cpu.losses" 0.05 0.02 2>"$work/close.err" && ok ||
  fail "emulated CUDA bf16 with kept copies vs CPU: $(tail -n 1 "$work/close.err")"
for name in tf32 tf32-f32edges tf32-kept; do
  close "$work/$name.losses" "$work/cpu.losses" 1e-2 1e-3 2>"$work/close.err" && ok ||
    fail "emulated CUDA $name vs CPU: $(tail -n 1 "$work/close.err")"
done

# ---- 3. the side stream ------------------------------------------------------------------------
# The weight gradients run on a second stream beside the input gradients (gan/backend.h
# side_fork), joined at the end of each backward. The emulated device runs the side's work in
# the order GAN_EMU_SIDE_ORDER says (after main's, as early as its fork allows, or interleaved with
# main's), so that memory the two streams share without an event between computes differently in
# one of them: each must train bit for bit like one stream (GAN_CUDA_SIDE_STREAM=never). A model
# of 16x16 images whose convolutions make input gradients with workspaces (the tiny one's are
# GEMMs), in each precision, bf16 and tf32 with stored NHWC edges and with NHWC copies in the
# workspaces instead (GAN_CUDA_STORAGE=never; tf32 with NHWC always), where a side pass given
# main's workspace shows (seen: NaNs under interleave), as does a backward that does not join
# (seen: after), and the first stream writing z while G's forward reads it on the side (seen:
# before, interleave).
make_tiny_idx "$work/mid.idx3-ubyte" 16
printf '%s\n' '[model]' 'nz = 8' \
  'generator = convt(32,4,1,0) bn relu convt(16,4,2,1) bn relu convt(8,4,2,1) bn relu convt(1,3,1,1) tanh' \
  'discriminator = conv(8,4,2,1) lrelu(0.2) conv(16,4,2,1) bn lrelu(0.2) conv(32,3,1,1) bn lrelu(0.2) conv(1,4,1,0) sigmoid' \
  '[data]' "path = $work/mid.idx3-ubyte" 'image_size = 16' 'channels = 1' \
  '[train]' 'iterations = 6' 'batch_size = 8' 'seed = 5' \
  '[log]' 'every = 1' 'sample_every = 0' 'checkpoint_every = 0' > "$work/mid.ini"
train_ini=$work/mid.ini
side_runs() { # side_runs NAME [key=value ...]: one stream, then the side in each order
  local name=$1; shift
  train_env="GAN_CACHE_DIR=$work/cache-$name $set_up GAN_CUDA_SIDE_STREAM=never"
  train "$name-one" cuda "$@"
  for order in after before interleave; do
    train_env="GAN_CACHE_DIR=$work/cache-$name $set_up GAN_EMU_SIDE_ORDER=$order"
    train "$name-$order" cuda "$@"
    cmp -s "$work/$name-one.losses" "$work/$name-$order.losses" && ok ||
      fail "$name: the side stream ($order) trains differently from one stream:" \
        "$(paste -d'|' "$work/$name-one.losses" "$work/$name-$order.losses" | head -n 3)"
  done
  grep -q "^side stream: the weight gradients beside the input gradients, G's forward beside D" \
    "$work/train-$name-after.out" && ok ||
    fail "$name: the side stream was not used: $(head -n 3 "$work/train-$name-after.out")"
  ! grep -q '^side stream:' "$work/train-$name-one.out" && ok ||
    fail "$name: GAN_CUDA_SIDE_STREAM=never still used the side stream"
}
set_up="" side_runs side-fp32
set_up="" side_runs side-fp32-eager train.graph=false
set_up="" side_runs side-bf16 train.precision=bf16
set_up="GAN_CUDA_STORAGE=never" side_runs side-bf16-copies train.precision=bf16
set_up="" side_runs side-tf32 train.precision=tf32
set_up="GAN_CUDA_STORAGE=never GAN_CUDA_NHWC=always" side_runs side-tf32-copies train.precision=tf32
grep -q '^  conv side workspace ' "$work/train-side-bf16-copies-after.out" && ok ||
  fail "side-bf16-copies: no side workspace: $(grep -A14 '^memory' "$work/train-side-bf16-copies-after.out")"
grep -q 'stored BF16 NHWC' "$work/train-side-bf16-after.out" && ok ||
  fail "side-bf16: no stored edges: $(grep -i stored "$work/train-side-bf16-after.out")"
grep -q 'stored FP32 NHWC' "$work/train-side-tf32-after.out" && ok ||
  fail "side-tf32: no stored edges: $(grep -i stored "$work/train-side-tf32-after.out")"
grep -q '^  conv side workspace ' "$work/train-side-tf32-copies-after.out" && ok ||
  fail "side-tf32-copies: no side workspace: $(grep -A14 '^memory' "$work/train-side-tf32-copies-after.out")"
train_env=""
train_ini=$work/tiny.ini

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
