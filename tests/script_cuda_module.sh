#!/usr/bin/env bash
# The CUDA backend is loaded on demand (libgan_cuda.so, src/backend/load_cuda.c): gan itself
# links none of the CUDA libraries, a CPU-only `gan help` stays small, and where the module cannot
# be loaded (a machine without the CUDA runtime: here a stand-in module whose own dependency is
# missing), gan still starts, says why CUDA is unavailable, and trains on the CPU.
source "$(dirname "$0")/lib_script.sh"
script_setup script_cuda_module

# 1. gan links no CUDA library (ldd lists what the loader maps at start).
if ldd "$gan" | grep -qiE 'libcudart|libcublas|libcudnn'; then
  fail "gan links a CUDA library at start: $(ldd "$gan" | grep -iE 'cudart|cublas|cudnn' | tr '\n' ' ')"
else ok; fi

# 2. the resident set of `gan help` stays below 50 MiB (213 MiB when gan linked cuDNN and cuBLAS).
rss_kib=$(python3 - "$gan" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "help"], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
)
if [ -n "$rss_kib" ] && [ "$rss_kib" -lt $((50 * 1024)) ]; then ok
else fail "gan help: maximum resident set ${rss_kib:-?} KiB, want < 51200"; fi
echo "gan help: maximum resident set $rss_kib KiB"

# 3. a CUDA module that cannot be loaded: gan info says why, auto falls back to the CPU and says
#    why, --device cuda refuses with the reason. The stand-in module needs libgan_missing.so,
#    built for the link and removed before the run.
if "$gan" info --no-bench | grep -q "CUDA backend .*built (cuDNN"; then
  cc=${CC:-cc}
  printf 'int gan_missing(void) { return 1; }\n' > "$work/missing.c"
  printf 'int gan_missing(void);\nint gan_cuda_module_backend_create(void) { return gan_missing(); }\n' > "$work/module.c"
  if "$cc" -shared -fPIC -o "$work/libgan_missing.so" "$work/missing.c" &&
     "$cc" -shared -fPIC -o "$work/libgan_cuda.so" "$work/module.c" -L"$work" -lgan_missing; then
    rm -f "$work/libgan_missing.so"
    export GAN_CUDA_MODULE="$work/libgan_cuda.so"
    expect 0 "libgan_missing.so" -- "$gan" info --no-bench
    expect 0 "using the CPU: the CUDA backend is unavailable" -- \
      "$gan" train "$GAN_SOURCE_DIR/configs/mlp_mnist.ini" data.format=toy data.channels=2 data.image_size=1 \
      "model.generator=linear(16) relu linear(2) reshape(2,1,1)" \
      "model.discriminator=flatten linear(16) lrelu(0.2) linear(1) sigmoid" \
      train.iterations=2 train.batch_size=8 log.sample_every=0 --quiet --out "$work/run"
    expect 1 "cannot be loaded" -- "$gan" selftest --device cuda --batch 2 --config "$GAN_SOURCE_DIR/configs/dcgan_fmnist32.ini"
    export GAN_CUDA_MODULE="$work/no_such_module.so"
    expect 0 "no such file" -- "$gan" info --no-bench
    unset GAN_CUDA_MODULE
  else
    fail "could not build the stand-in module with $cc"
  fi
else
  echo "this build has no CUDA module: the unloadable-module checks do not apply"
fi

echo "script_cuda_module: $passed passed, $failed failed"
[ "$failed" = 0 ]
