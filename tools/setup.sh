#!/usr/bin/env bash
# Installs every system package gan needs to build, test and run (Debian 12). Safe to run twice:
# it installs only what is missing. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git       # compiler and build
  libpng-dev libjpeg62-turbo-dev zlib1g-dev  # image and gzip decoding, PNG output
  libopenblas0-pthread libopenblas-dev       # the BLAS (loaded at run time, see src/blas.c)
  libinih-dev                                # INI configs
  libcjson-dev                               # safetensors JSON headers
  libopenmpi-dev openmpi-bin                 # data-parallel runs: mpirun -np N gan train (GAN_MPI)
  dataset-fashion-mnist                      # the quick start's data (IDX files)
  librandom123-dev                           # Philox known-answer vectors (tests/data has a copy)
  python3 python3-numpy python3-venv         # test scripts; a venv for PyPI packages
  python3-torch                              # loading exported generators in PyTorch (tests)
  clang-14 libclang-rt-14-dev libomp-14-dev  # the fuzz targets: libFuzzer + sanitizers, OpenMP for clang
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all system packages present"
fi

# PyPI packages for the interop tests (TensorBoard's own event reader, onnx, onnxruntime, the
# official safetensors) in a virtual environment, .venv/ at the top of the checkout (git-ignored),
# made from Debian's python3. Redone only when tools/requirements-interop.txt changes. Where PyPI
# cannot be reached the build and the other tests are unaffected: those tests skip and say why.
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
requirements="$root/tools/requirements-interop.txt"
if cmp -s "$requirements" "$venv/requirements.installed" 2>/dev/null; then
  echo "setup: $venv up to date"
elif /usr/bin/python3 -m venv "$venv" &&
     "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"; then
  cp "$requirements" "$venv/requirements.installed"
  echo "setup: installed the interop test packages into $venv"
else
  echo "setup: WARNING: could not install the PyPI packages of tools/requirements-interop.txt into" \
       "$venv; the TensorBoard, ONNX and safetensors interop tests will skip" >&2
fi
