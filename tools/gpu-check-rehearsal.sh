#!/usr/bin/env bash
# Rehearses tools/gpu-check.sh on a machine without a GPU, so that the one run a GPU machine gets
# is not spent on a mistake in the script itself: the emulated device (libgan_cuda_emu.so, the
# CUDA backend's host code and kernels over a CPU stand-in for the CUDA runtime, cuBLAS and cuDNN;
# docs/DESIGN.md "Testing") stands in for the GPU, and a stand-in nvidia-smi names it. Every step
# then runs as it would on a GPU (the build, the gpu-labelled tests, the selftests, the training
# runs side by side with the CPU, the rerun's comparison, the quality curves, the report), on a
# smaller config, batch and iteration count (the emulation computes naively on the CPU; the ops
# benchmark's GEMM peak at 64^3, GAN_BENCH_PEAK_N). The speed check is skipped (no torch that
# sees CUDA), as on a GPU machine without one.
#
#   tools/gpu-check-rehearsal.sh [BUILD_DIR]     (default build-rehearsal; 4-6 minutes on 2 cores)
#
# The report goes to BUILD_DIR/rehearsal-report.md, the sample grids to BUILD_DIR/rehearsal-results;
# nothing under bench/ is written. Exit status: gpu-check's.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-rehearsal}
mkdir -p "$build"
build=$(cd "$build" && pwd)

stand_in=$(mktemp -d)
trap 'rm -rf "$stand_in"' EXIT
cat >"$stand_in/nvidia-smi" <<'SMI'
#!/bin/sh
# nvidia-smi as tools/gpu-check-rehearsal.sh fakes it: the emulated device, compute capability 9.0
case "$*" in
  -L) echo "GPU 0: gan emulated device (rehearsal, no GPU)" ;;
  *--query-gpu=*) echo "gan emulated device (rehearsal), 9.0, none" ;;
  *) echo "nvidia-smi stand-in (tools/gpu-check-rehearsal.sh): the emulated device, libgan_cuda_emu.so; no GPU" ;;
esac
SMI
chmod +x "$stand_in/nvidia-smi"

PATH="$stand_in:$PATH" \
GAN_CUDA_MODULE="$build/libgan_cuda_emu.so" \
GAN_CHECK_SELFTEST_ARGS="--config configs/dcgan_fmnist32.ini --batch 2" \
GAN_CHECK_TRAIN_ARGS="train.batch_size=4 train.iterations=3" \
GAN_CHECK_BENCH_ARGS="--configs dcgan_fmnist32 --batch 2 --runs 1 --warmup 0 --min-ms 0" \
GAN_BENCH_PEAK_N=64 \
GAN_CHECK_RESULTS_DIR="$build/rehearsal-results" \
  tools/gpu-check.sh --build "$build" --report "$build/rehearsal-report.md"
