#!/usr/bin/env bash
# The quick start: set up, build, train DCGAN on Fashion-MNIST (configs/dcgan_fmnist32.ini) for one
# epoch (on the GPU where there is one, else the CPU), export the generator, and say where the
# sample grid and the exported generator are. Extra arguments go to `gan train`, e.g.
#   tools/quickstart.sh train.iterations=100 --device cpu
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target gan

out=runs/quickstart
if [ -d "$out/checkpoints" ] && ls "$out"/checkpoints/ckpt_*.safetensors >/dev/null 2>&1; then
  stamp=$(date +%Y%m%d-%H%M%S)
  echo "quickstart: $out holds an earlier run; this one goes to $out-$stamp"
  out="$out-$stamp"
fi

start=$(date +%s)
build/gan train configs/dcgan_fmnist32.ini --out "$out" "$@"
seconds=$(( $(date +%s) - start ))

latest=$(ls "$out"/checkpoints/ckpt_*.safetensors | sort | tail -n 1)
build/gan export "$latest" -o "$out/generator.safetensors"

echo
echo "quickstart: trained in ${seconds} s"
echo "  sample grid:          $out/samples/final.png"
echo "  exported generator:   $out/generator.safetensors (PyTorch names: main.0.weight, ...)"
echo "  checkpoint:           $latest"
