#!/usr/bin/env bash
# The test command: setup, configure, build, run every test with ctest; then the whole suite once
# more under AddressSanitizer + UndefinedBehaviorSanitizer; then the fuzz targets (clang, libFuzzer:
# the committed corpora and regressions replayed, and a fixed-seed, fixed-count fuzz). Exits
# non-zero on any failure.
#   tools/test.sh            everything
#   GAN_TEST_QUICK=1 tools/test.sh   skip the sanitizer pass and the fuzz step
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

tools/setup.sh

# The main build: CUDA is enabled when nvcc is found (it compiles and links here; GPU tests skip
# without a device). Warnings are errors so the CUDA build is held to it in CI.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGAN_WERROR=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${GAN_TEST_QUICK:-0}" != 1 ]; then
  echo "== the suite again under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGAN_SANITIZE=ON -DGAN_CUDA=OFF -DGAN_WERROR=ON
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow
fi

if [ "${GAN_TEST_QUICK:-0}" != 1 ]; then
  # clang's own build of the library (coverage hooks, ASan + UBSan) and the libFuzzer targets only;
  # ctest -L fuzz replays the committed inputs and runs the fixed-seed, fixed-count fuzz.
  echo "== the fuzz targets (clang-14, libFuzzer, ASan + UBSan): tests/fuzz/README.md"
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGAN_FUZZ=ON -DGAN_CUDA=OFF \
    -DGAN_WERROR=ON
  cmake --build build-fuzz -j"$jobs" --target gan_fuzzers
  ctest --test-dir build-fuzz --output-on-failure -j"$jobs" -L fuzz
fi
