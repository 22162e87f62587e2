#!/usr/bin/env bash
# Checks the CUDA backend on the machine it runs on, in one go, and writes one report:
#   1. environment (GPU, driver, CUDA toolkit, cuDNN, compilers, PyTorch if any)
#   2. dependencies: the system's, or the .deb folder made by tools/fetch-debs.sh, unpacked into
#      a local prefix (never into /); cuDNN from the toolkit, CUDNN_ROOT, or the Python wheel
#      nvidia-cudnn-cu13
#   3. configure for the local GPU (CMAKE_CUDA_ARCHITECTURES from nvidia-smi, or native) and build
#   4. ctest: the `gpu` label and the CUDA build's own tests (CI runs the rest on the CPU)
#   5. gan info; gan selftest --device cuda in fp32 + deterministic, in tf32 (NHWC forced) and in
#      bf16 (every op and one iteration against the CPU: largest and relative L2 errors per tensor)
#   6. dcgan_fmnist32 for 20 iterations on the GPU and on the CPU with the same seed, losses side
#      by side; the GPU run again, which must log the same losses and choose the same convolution
#      algorithms (kept in GAN_CACHE_DIR = BUILD/gpu-check-cache; listed in the report), and on
#      one stream (GAN_CUDA_SIDE_STREAM=never), which must log the same losses too
#   6b. dcgan_fmnist32 for one epoch on the GPU in fp32, tf32 and bf16: the loss and D(x)/D(G(z))
#      curves side by side (bench/quality_curves.py) and the sample grids
#      (bench/results/gpu-quality-PRECISION.png)
#   7. gan bench ops --device cuda on one config and batch, in fp32 and in bf16 (a short look at
#      the ops)
#   8. the speed check (bench/gpu_speed.py): gan in each precision against PyTorch in the matching
#      set-up and its CUDA-graph variant, alternating rounds, dcgan_celeba64 at 64 and 128 and
#      dcgan_fmnist32 at 128; its table goes into the report, and so do the tf32 and bf16
#      convolution choices (algorithm, layout) the runs left in the cache. Skipped, with the
#      reason, without a GPU or without a python3 whose torch sees CUDA (GAN_TORCH_PYTHON names
#      another python).
# The whole script, build included, aims at GAN_CHECK_SECONDS (default 300) on a 16-core H100/H200
# machine: the speed check gets what the earlier steps left (60-210 s; it cuts its rounds to fit).
# Each step runs under a time limit well inside 10 minutes. Works without network access.
#
#   tools/gpu-check.sh [--report FILE] [--build DIR] [--debs DIR]
#
# Environment: CUDNN_ROOT (a folder with include/cudnn.h and lib/), GAN_CUDNN_FROM_WHEEL=1 (take
# cuDNN from the nvidia-cudnn-cu13 wheel even when the toolkit has one), GAN_DEBS_DIR (default
# third_party/debs), GAN_USE_DEBS=1 (use the .deb folder even when the system has the libraries),
# CUDA_HOME (default: where nvcc is, else /usr/local/cuda), GAN_CHECK_SECONDS (default 300: what the
# whole script aims at), GAN_TORCH_PYTHON (default python3: the python of the speed check).
# For a rehearsal without a GPU (tools/gpu-check-rehearsal.sh): GAN_CHECK_SELFTEST_ARGS,
# GAN_CHECK_TRAIN_ARGS and GAN_CHECK_BENCH_ARGS (words added to every `gan selftest`, `gan train`
# and `gan bench ops` command: a smaller config, batch or iteration count), GAN_CHECK_RESULTS_DIR
# (default bench/results: where the sample grids of step 6b go).
# The report goes to bench/GPU_REPORT.md when a GPU was found (commit it: `gan info` points at it
# as the last run on a GPU, with its date and commit), else to BUILD/gpu-check-report.md.
# Exit status: 0 when every step that ran passed (see the report's verdict for whether a GPU was
# there at all), 1 when one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=build-gpu
report=""
debs=${GAN_DEBS_DIR:-third_party/debs}
while [ $# -gt 0 ]; do
  case "$1" in
    --report) report=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --debs) debs=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$build"
build=$(cd "$build" && pwd)
logs=$build/gpu-check-logs
# The convolution algorithm choices gan keeps (gan/conv_choices.h) go here, not into $HOME:
# the first run on this machine measures them, later ones reuse them; the report lists them.
export GAN_CACHE_DIR=$build/gpu-check-cache
rm -rf "$logs"
mkdir -p "$logs"
prefix=$build/prefix
jobs=$(nproc 2>/dev/null || echo 4)

summary=()      # "| step | result | seconds |" rows
failed=0
body=$logs/body.md
: >"$body"
step_number=0
step_log=""     # the log of the last run_step
# the rehearsal's additions (unquoted words: config overrides and options)
read -r -a selftest_extra <<<"${GAN_CHECK_SELFTEST_ARGS:-}"
read -r -a train_extra <<<"${GAN_CHECK_TRAIN_ARGS:-}"
read -r -a bench_extra <<<"${GAN_CHECK_BENCH_ARGS:-}"
results_dir=${GAN_CHECK_RESULTS_DIR:-$root/bench/results}

note() { echo "$*" | tee -a "$body"; }

# run_step NAME LIMIT_SECONDS COMMAND...: runs it with a time limit, logs everything, and adds a
# section with the output's tail to the report (the command as STEP_SHOWN says, if set).
# Returns the command's status.
run_step() {
  local name=$1 limit=$2
  shift 2
  local shown=${STEP_SHOWN:-$*}
  step_number=$((step_number + 1))
  local log
  log=$logs/$(printf '%02d' "$step_number")-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-').log
  step_log=$log
  echo "== $name"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  local rc=$?
  local seconds=$((SECONDS - start))
  local result=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    result="TIMEOUT after ${limit}s"
    failed=1
  elif [ $rc -ne 0 ]; then
    result="FAILED (exit $rc)"
    failed=1
  fi
  echo "   $result in ${seconds}s (log: $log)"
  summary+=("| $name | $result | $seconds |")
  {
    echo
    echo "### $name"
    echo
    echo "\`$shown\` -> $result in ${seconds}s"
    echo
    echo '```'
    tail -n 80 "$log"
    echo '```'
  } >>"$body"
  return $rc
}

# Like run_step, but a failure is recorded without failing the check (optional steps).
run_optional() {
  local before=$failed
  run_step "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then
    failed=$before
    summary[${#summary[@]}-1]="${summary[${#summary[@]}-1]/FAILED/not available: FAILED}"
  fi
  return $rc
}

skip_step() {
  echo "== $1: skipped ($2)"
  summary+=("| $1 | skipped: $2 | 0 |")
  printf '\n### %s\n\nskipped: %s\n' "$1" "$2" >>"$body"
}

# ---- 1. environment --------------------------------------------------------------------------

cuda_home=${CUDA_HOME:-}
if [ -z "$cuda_home" ]; then
  if command -v nvcc >/dev/null; then
    cuda_home=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  else
    cuda_home=/usr/local/cuda
  fi
fi
nvcc=$cuda_home/bin/nvcc

gpu_name="" gpu_arch="" driver=""
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  line=$(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader 2>/dev/null | head -1)
  gpu_name=$(echo "$line" | cut -d, -f1 | sed 's/^ *//; s/ *$//')
  gpu_arch=$(echo "$line" | cut -d, -f2 | tr -d ' .')
  driver=$(echo "$line" | cut -d, -f3 | tr -d ' ')
  if [ -z "$gpu_name" ]; then
    gpu_name=$(nvidia-smi -L | head -1)
  fi
fi
have_gpu=0
[ -n "$gpu_name" ] && have_gpu=1

environment() {
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(hostname); $(uname -srm)"
  [ -r /etc/os-release ] && (. /etc/os-release && echo "os: $PRETTY_NAME")
  echo "commit: $(git rev-parse HEAD 2>/dev/null) $(git diff --quiet 2>/dev/null || echo '(with local changes)')"
  echo "cpus: $jobs"
  if command -v nvidia-smi >/dev/null; then nvidia-smi || true; else echo "nvidia-smi: not found"; fi
  echo "CUDA_HOME: $cuda_home"
  if [ -x "$nvcc" ]; then "$nvcc" --version; else echo "nvcc: not found at $nvcc"; fi
  command -v cmake >/dev/null && cmake --version | head -1
  command -v cc >/dev/null && cc --version | head -1
  command -v python3 >/dev/null && python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1
  return 0
}
STEP_SHOWN="environment (nvidia-smi, nvcc --version, ...)" run_step "environment" 60 bash -c "$(declare -f environment); jobs=$jobs cuda_home=$cuda_home nvcc=$nvcc environment"

# ---- 2. dependencies -------------------------------------------------------------------------

# The system has what gan links when pkg-config knows inih and cJSON and the image/zlib headers
# are installed.
system_has_libraries() {
  command -v pkg-config >/dev/null && pkg-config --exists inih libcjson &&
    [ -e /usr/include/png.h ] && [ -e /usr/include/jpeglib.h -o -e /usr/include/x86_64-linux-gnu/jpeglib.h ] &&
    [ -e /usr/include/zlib.h ]
}

multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

# Unpacks every .deb of the folder into $prefix with dpkg-deb (or ar + tar), then points
# pkg-config, CMake and the dynamic loader at it. Nothing is written outside $prefix.
unpack_debs() {
  set -e
  shopt -s nullglob
  local files=("$debs"/*.deb)
  [ ${#files[@]} -gt 0 ] || { echo "no .deb files in $debs (run tools/fetch-debs.sh on a machine with apt)"; return 1; }
  [ -r "$debs/MANIFEST" ] && cat "$debs/MANIFEST"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for f in "${files[@]}"; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$f" "$prefix"
    else
      local member
      member=$(ar t "$f" | grep '^data\.tar')
      ar p "$f" "$member" | tar -x -C "$prefix" -f - --no-same-owner
    fi
    echo "unpacked $(basename "$f")"
  done
  # .pc files and -dev symlinks name /usr and /lib absolutely: point them into the prefix.
  find "$prefix" -name '*.pc' -print0 | xargs -0 -r sed -i "s#=/usr#=$prefix/usr#g; s#-I/usr/#-I$prefix/usr/#g; s#-L/usr/#-L$prefix/usr/#g"
  find "$prefix" -type l | while read -r link; do
    target=$(readlink "$link")
    case "$target" in
      /*) ln -sfn "$prefix$target" "$link" ;;
    esac
  done
  echo "prefix $prefix:"
  find "$prefix" -name '*.so*' | sed "s#$prefix##" | sort
}

use_debs=0
if [ "${GAN_USE_DEBS:-0}" = 1 ] || ! system_has_libraries; then
  use_debs=1
  if STEP_SHOWN="dpkg-deb -x each of $debs/*.deb into $prefix" run_step "dependencies: unpack $debs into $prefix" 300 bash -c "$(declare -f unpack_debs); debs='$debs' prefix='$prefix' unpack_debs"; then
    export PATH="$prefix/usr/bin:$PATH"
    export PKG_CONFIG_PATH="$prefix/usr/lib/$multiarch/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export LD_LIBRARY_PATH="$prefix/usr/lib/$multiarch:$prefix/lib/$multiarch:$prefix/usr/lib/$multiarch/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  fi
else
  skip_step "dependencies" "the system has libpng, libjpeg, zlib, inih and cJSON"
fi

# cuDNN: CUDNN_ROOT, else the toolkit's, else the Python wheel. The wheel ships libcudnn.so.9
# without the unversioned libcudnn.so that the linker and CMake look for, so a small folder of
# links stands in for it.
find_cudnn() {
  if [ -n "${CUDNN_ROOT:-}" ]; then
    echo "cuDNN: CUDNN_ROOT=$CUDNN_ROOT"
    return 0
  fi
  if [ "${GAN_CUDNN_FROM_WHEEL:-0}" != 1 ] &&
     { [ -e "$cuda_home/include/cudnn.h" ] || [ -e /usr/include/cudnn.h ] || [ -e "/usr/include/$multiarch/cudnn.h" ]; }; then
    echo "cuDNN: installed with the toolkit or the system"
    return 0
  fi
  local wheel
  wheel=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null) || wheel=""
  if [ -z "$wheel" ] || [ ! -e "$wheel/include/cudnn.h" ]; then
    echo "cuDNN: not found (no cudnn.h under CUDNN_ROOT, $cuda_home/include, /usr/include, nor the nvidia-cudnn-cu13 wheel)"
    return 1
  fi
  local shim=$build/cudnn-root
  rm -rf "$shim"
  mkdir -p "$shim/lib"
  ln -s "$wheel/include" "$shim/include"
  local lib
  for lib in "$wheel"/lib/libcudnn*.so.*; do
    ln -s "$lib" "$shim/lib/$(basename "$lib")"
    ln -sfn "$lib" "$shim/lib/$(basename "$lib" | sed 's/\.so\..*/.so/')"
  done
  echo "cuDNN: the Python wheel at $wheel (links in $shim)"
  export CUDNN_ROOT=$shim
  export LD_LIBRARY_PATH="$wheel/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}
if find_cudnn >"$logs/cudnn.txt" 2>&1; then
  summary+=("| cuDNN | $(cat "$logs/cudnn.txt" | tail -1) | 0 |")
else
  summary+=("| cuDNN | FAILED: $(tail -1 "$logs/cudnn.txt") | 0 |")
  failed=1
fi
cat "$logs/cudnn.txt"
printf '\n### cuDNN\n\n%s\n' "$(cat "$logs/cudnn.txt")" >>"$body"
export LD_LIBRARY_PATH="$cuda_home/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- 3. configure and build ------------------------------------------------------------------

if [ $have_gpu = 1 ] && [ -n "$gpu_arch" ]; then
  arch=$gpu_arch
elif [ $have_gpu = 1 ]; then
  arch=native
else
  arch=90 # no GPU to build for: one architecture proves it compiles and links
fi
cmake_args=(-S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGAN_CUDA=ON
            -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCMAKE_CUDA_COMPILER="$nvcc")
[ -n "${CMAKE_PREFIX_PATH:-}" ] && cmake_args+=(-DCMAKE_PREFIX_PATH="${CMAKE_PREFIX_PATH//:/;}")
# With the unpacked .deb files, their headers must win over the host's: libjpeg's jconfig.h lives
# in the multiarch folder, and a host libjpeg-turbo8-dev's (version 80) would otherwise be read
# with the .deb's libjpeg.so.62 at run time ("Wrong JPEG library version").
[ "$use_debs" = 1 ] && cmake_args+=(-DCMAKE_C_FLAGS="-I$prefix/usr/include/$multiarch -I$prefix/usr/include")
built=0
if run_step "configure (CUDA architectures $arch)" 300 cmake "${cmake_args[@]}" &&
   run_step "build" 590 cmake --build "$build" -j"$jobs"; then
  built=1
fi
gan=$build/gan

# ---- 4. tests ----------------------------------------------------------------------------------

if [ $built = 1 ]; then
  # Only what a GPU changes: the gpu label, and the CUDA build's own tests (descriptors, planning,
  # emulated kernels, graph replay). CI runs every other test on the CPU; the whole suite takes
  # more than 4 minutes even here and would eat the device time.
  run_step "ctest -L gpu (verbose)" 150 ctest --test-dir "$build" -L gpu -V --timeout 120
  run_step "ctest: the CUDA build's own tests" 150 \
    ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 120 \
    -R '^(test_cuda_|test_emu_kernels$|test_graph_replay$|test_selftest$|test_conv_choices$)'
else
  skip_step "ctest" "the build failed"
fi

# ---- 5. gan info, gan selftest ------------------------------------------------------------------

if [ $built = 1 ]; then
  run_step "gan info" 120 "$gan" info
  if [ $have_gpu = 1 ]; then
    run_step "gan selftest --device cuda (fp32, deterministic)" 180 "$gan" selftest --device cuda "${selftest_extra[@]}"
    # tf32 with every cuDNN pass in NHWC: on the FP32 NHWC tensors stored between layers, and on
    # FP32 copies elsewhere (its NCHW passes are fp32's code with TF32 math; the timed choice
    # between the two, and tf32 without stored edges, run in the speed check)
    run_optional "gan selftest --device cuda (tf32 NHWC forced, not deterministic)" 180 \
      env GAN_CUDA_NHWC=always "$gan" selftest --device cuda "${selftest_extra[@]}" train.precision=tf32 train.deterministic=false
    run_optional "gan selftest --device cuda (bf16, not deterministic)" 180 \
      "$gan" selftest --device cuda "${selftest_extra[@]}" train.precision=bf16 train.deterministic=false
    # the sub-pixel backward-data wherever it applies, timed faster or not
    run_step "gan selftest --device cuda (fp32, sub-pixel backward-data forced)" 180 \
      env GAN_CUDA_SUBPIXEL=always "$gan" selftest --device cuda "${selftest_extra[@]}"
    # the im2col backward-filter on every layer, timed faster or not
    run_step "gan selftest --device cuda (fp32, im2col backward-filter forced)" 180 \
      env GAN_CUDA_IM2COL=always "$gan" selftest --device cuda "${selftest_extra[@]}"
  else
    skip_step "gan selftest --device cuda" "no GPU"
  fi
fi

# ---- 6. a short training run on both devices ----------------------------------------------------

data_override=()
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] &&
   [ -e "$prefix/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
  data_override=("data.path=$prefix/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
fi
runs=$build/gpu-check-runs
if [ $built = 1 ] && [ $have_gpu = 1 ]; then
  rm -rf "$runs"
  train_args=(train configs/dcgan_fmnist32.ini train.iterations=20 train.seed=999 log.every=1
              "${data_override[@]}" "${train_extra[@]}")
  run_step "train dcgan_fmnist32 20 iterations --device cuda" 120 \
    "$gan" "${train_args[@]}" --device cuda --out "$runs/cuda"
  cuda_rc=$? cuda_log=$step_log
  run_step "train dcgan_fmnist32 20 iterations --device cpu" 150 \
    "$gan" "${train_args[@]}" --device cpu --out "$runs/cpu"
  cpu_rc=$? cpu_log=$step_log
  # fp32 + deterministic is bit-reproducible run to run: a second run (reusing the algorithm
  # choices the first one stored) must log the same losses.
  run_step "train dcgan_fmnist32 again --device cuda: same losses" 120 bash -c \
    "'$gan' ${train_args[*]} --device cuda --out '$runs/cuda2' --quiet &&
     cmp <(grep -o '\"loss_d\": [^,]*, \"loss_g\": [^,]*' '$runs/cuda/metrics.jsonl') \
         <(grep -o '\"loss_d\": [^,]*, \"loss_g\": [^,]*' '$runs/cuda2/metrics.jsonl') &&
     cmp '$runs/cuda/conv_algorithms.txt' '$runs/cuda2/conv_algorithms.txt'"
  # the weight gradients on a side stream (the default) compute what they do on one stream: the
  # same losses with GAN_CUDA_SIDE_STREAM=never (a race between the streams would show here)
  run_step "train dcgan_fmnist32 on one stream --device cuda: same losses" 120 bash -c \
    "GAN_CUDA_SIDE_STREAM=never '$gan' ${train_args[*]} --device cuda --out '$runs/cuda-one' --quiet &&
     cmp <(grep -o '\"loss_d\": [^,]*, \"loss_g\": [^,]*' '$runs/cuda/metrics.jsonl') \
         <(grep -o '\"loss_d\": [^,]*, \"loss_g\": [^,]*' '$runs/cuda-one/metrics.jsonl')"
  if [ $cuda_rc = 0 ] && [ $cpu_rc = 0 ]; then
    {
      echo
      echo "### losses, same seed: GPU (left) | CPU (right)"
      echo
      echo '```'
      paste -d'|' <(grep -E 'Loss_D|loss_d' "$cuda_log") <(grep -E 'Loss_D|loss_d' "$cpu_log")
      echo '```'
    } >>"$body"
  fi
  if [ -f "$runs/cuda/conv_algorithms.txt" ]; then
    {
      echo
      echo "### convolution algorithms chosen (dcgan_fmnist32, fp32, deterministic)"
      echo
      echo '```'
      cat "$runs/cuda/conv_algorithms.txt"
      echo '```'
    } >>"$body"
  fi
else
  skip_step "training runs (GPU and CPU)" "$([ $built = 1 ] && echo 'no GPU' || echo 'the build failed')"
fi

# ---- 6b. training quality in each precision ---------------------------------------------------------
# dcgan_fmnist32 for one epoch (468 iterations at batch 128): fp32 deterministic (gan's default), tf32
# and bf16 not deterministic (as users run them). The loss and D(x)/D(G(z)) curves side by side
# (bench/quality_curves.py) and each run's final sample grid, copied to
# bench/results/gpu-quality-PRECISION.png, go into the report.

quality=$build/gpu-check-quality
if [ $built = 1 ] && [ $have_gpu = 1 ]; then
  rm -rf "$quality"
  quality_runs=()
  for precision in fp32 tf32 bf16; do
    deterministic=$([ $precision = fp32 ] && echo true || echo false)
    step=run_step
    [ $precision = fp32 ] || step=run_optional
    if $step "train dcgan_fmnist32 one epoch --device cuda ($precision)" 150 \
         "$gan" train configs/dcgan_fmnist32.ini train.precision=$precision train.deterministic=$deterministic \
         "${data_override[@]}" "${train_extra[@]}" --device cuda --out "$quality/$precision" --quiet; then
      quality_runs+=("$precision=$quality/$precision")
      if [ -f "$quality/$precision/samples/final.png" ]; then
        mkdir -p "$results_dir"
        cp "$quality/$precision/samples/final.png" "$results_dir/gpu-quality-$precision.png"
      fi
    fi
  done
  if [ ${#quality_runs[@]} -gt 0 ]; then
    {
      echo
      python3 bench/quality_curves.py --title "training quality: dcgan_fmnist32, one epoch, by precision" \
        "${quality_runs[@]}" 2>&1
      echo
      echo "sample grids after the epoch (bench/results/): " \
        $(for r in "${quality_runs[@]}"; do echo "![${r%%=*}](results/gpu-quality-${r%%=*}.png)"; done)
    } >>"$body"
  fi
else
  skip_step "training quality runs" "$([ $built = 1 ] && echo 'no GPU' || echo 'the build failed')"
fi

# ---- 7. a short look at the ops --------------------------------------------------------------------
# (every config and batch takes minutes: `gan bench ops --device cuda` by hand for those)

if [ $built = 1 ] && [ $have_gpu = 1 ]; then
  if "$gan" help 2>&1 | grep -qw bench; then
    run_optional "gan bench ops --device cuda (dcgan_celeba64, batch 64)" 60 \
      "$gan" bench ops --device cuda --configs dcgan_celeba64 --batch 64 --runs 3 "${bench_extra[@]}"
    # bf16's ops beside fp32's: each convolution's algorithm and time with its BF16 copies
    run_optional "gan bench ops --device cuda (dcgan_celeba64, batch 64, bf16, not deterministic)" 60 \
      "$gan" bench ops --device cuda --configs dcgan_celeba64 --batch 64 --runs 3 "${bench_extra[@]}" \
      train.precision=bf16 train.deterministic=false
  else
    skip_step "gan bench ops --device cuda" "this build's gan has no bench command"
  fi
else
  skip_step "gan bench ops --device cuda" "$([ $built = 1 ] && echo 'no GPU' || echo 'the build failed')"
fi

# ---- 8. the speed check -----------------------------------------------------------------------------

# Whether python3's torch sees CUDA, as the environment step found (no second import of torch);
# another interpreter (GAN_TORCH_PYTHON) is asked.
torch_python=${GAN_TORCH_PYTHON:-python3}
torch_cuda() {
  local line
  if [ -z "${GAN_TORCH_PYTHON:-}" ]; then
    line=$(grep -hE '^torch .* available (True|False)$' "$logs"/*-environment.log 2>/dev/null | tail -1)
  else
    line=$("$torch_python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>/dev/null | tail -1)
  fi
  case "$line" in
    *"available True") return 0 ;;
    *"available False") echo "$torch_python's torch (${line#torch }) does not see CUDA"; return 1 ;;
    *) echo "$torch_python cannot import torch"; return 1 ;;
  esac
}
speed_table=$logs/speed-check-table.md
rm -f "$speed_table"
if [ $built != 1 ]; then
  skip_step "speed check" "the build failed"
elif [ $have_gpu != 1 ]; then
  skip_step "speed check" "no GPU"
elif ! "$gan" help 2>&1 | grep -qw bench; then
  skip_step "speed check" "this build's gan has no bench command"
elif ! why=$(torch_cuda); then
  skip_step "speed check" "$why"
else
  target=${GAN_CHECK_SECONDS:-300}
  budget=$((target - SECONDS - 20))
  [ $budget -gt 210 ] && budget=210
  [ $budget -lt 60 ] && budget=60
  run_step "speed check (bench/gpu_speed.py, budget ${budget}s)" $((budget + 150)) \
    "$torch_python" bench/gpu_speed.py --gan "$gan" --budget-seconds "$budget" \
      --json "$logs/speed-check.json" --table-out "$speed_table"
fi
# What the reduced precisions chose, from the cache the runs above shared (no GPU time): each
# pass's algorithm and, in tf32, the layout its timing took (NCHW, or NHWC on copies; NHWC alone
# for a plan with stored tensors, stored=true).
if [ -f "$GAN_CACHE_DIR/conv_algorithms.txt" ] &&
   grep -qE 'precision=(tf32|bf16)' "$GAN_CACHE_DIR/conv_algorithms.txt"; then
  {
    echo
    echo "### convolution algorithms chosen in tf32 and bf16 (the cache after the runs above)"
    echo
    echo '```'
    grep -E 'precision=(tf32|bf16)' "$GAN_CACHE_DIR/conv_algorithms.txt" |
      sed -E 's/^gpu="[^"]*" cc=[^ ]* cudnn=[^ ]* //'
    echo '```'
  } >>"$body"
fi

# ---- the report ---------------------------------------------------------------------------------

if [ $have_gpu = 1 ]; then
  verdict=$([ $failed = 0 ] && echo "PASSED on $gpu_name (sm_$arch, driver $driver)" || echo "FAILED on $gpu_name")
  [ -n "$report" ] || report=$root/bench/GPU_REPORT.md
else
  verdict=$([ $failed = 0 ] && echo "NO GPU: configure, build and the CPU tests passed; GPU tests skipped, the CUDA backend remains unverified on hardware" || echo "NO GPU, and a step FAILED")
  [ -n "$report" ] || report=$build/gpu-check-report.md
fi
mkdir -p "$(dirname "$report")"
{
  echo "# gan GPU check"
  echo
  echo "verdict: $verdict"
  echo
  echo "made by tools/gpu-check.sh; dependencies from $([ $use_debs = 1 ] && echo "$debs (unpacked into $prefix)" || echo "the system")"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---|"
  printf '%s\n' "${summary[@]}"
  echo
  echo "whole script: ${SECONDS}s (aim: ${GAN_CHECK_SECONDS:-300}s)"
  if [ -s "$speed_table" ]; then
    echo
    cat "$speed_table"
  fi
  cat "$body"
} >"$report"
echo
echo "gpu-check: $verdict"
echo "gpu-check: report in $report"
exit $failed
