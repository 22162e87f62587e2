#!/usr/bin/env bash
# PyTorch 2.x from PyPI (MKL and oneDNN 3 on the CPU: what users run, and faster there than Debian's
# python3-torch 1.13) in a venv of its own, for the CPU benchmarks:
#
#   tools/torch2-venv.sh                      # makes .venv-torch2 (about 1 GiB; not needed by the tests)
#   /usr/bin/python3 bench/compare_pytorch.py --gan build/gan --python .venv-torch2/python
#
# The wheel is the CUDA build (PyPI has no CPU-only one); it runs on the CPU here. It is installed
# without its dependencies, which would pull the whole CUDA toolkit again: only the pure-Python
# packages it imports, and the four NVIDIA wheels its METADATA pins that /usr/local/cuda lacks
# (cuSPARSELt, NVSHMEM, cuFile, NCCL), at the versions it pins. `.venv-torch2/python` runs the venv's
# python with those libraries and /usr/local/cuda/lib64 on LD_LIBRARY_PATH.
#
#   tools/torch2-venv.sh [VENV] [TORCH_SPEC]     (defaults: .venv-torch2, torch: the newest)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-torch2}
spec=${2:-torch}
cuda_lib=${CUDA_HOME:-/usr/local/cuda}/lib64

python3 -m venv "$venv"
pip=("$venv/bin/python3" -m pip install -q --disable-pip-version-check)
"${pip[@]}" --no-deps "$spec"
"${pip[@]}" filelock typing-extensions sympy networkx jinja2 fsspec numpy setuptools
# torch's pins: the NVIDIA wheels, and the cuda-toolkit meta-package whose own pins name cuFile
pins=$("$venv/bin/python3" - <<'EOF'
import importlib.metadata as md
import re
wanted = ("nvidia-cusparselt-cu13", "nvidia-nvshmem-cu13", "nvidia-nccl-cu13", "cuda-toolkit")
for req in md.requires("torch") or []:
    m = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(==[^;\s]+)", req)
    if m and m.group(1) in wanted:
        print(m.group(1) + m.group(3))
EOF
)
[ -n "$pins" ] || { echo "torch2-venv: no NVIDIA pins in torch's METADATA (a CPU-only wheel?): nothing more to install"; }
toolkit=$(echo "$pins" | grep '^cuda-toolkit==' || true)
others=$(echo "$pins" | grep -v '^cuda-toolkit==' || true)
if [ -n "$toolkit" ]; then
  "${pip[@]}" --no-deps "$toolkit"
  cufile=$("$venv/bin/python3" - <<'EOF'
import importlib.metadata as md
import re
for req in md.requires("cuda-toolkit") or []:
    m = re.match(r"(nvidia-cufile)\s*(==[^;\s]+)", req)
    if m:
        print(m.group(1) + m.group(2))
        break
EOF
)
  others="$others $cufile"
fi
# shellcheck disable=SC2086 # a list of requirement specifiers
[ -z "${others// /}" ] || "${pip[@]}" --no-deps $others

site=$("$venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
libs=$(find "$site/nvidia" -maxdepth 2 -type d -name lib 2>/dev/null | sort | tr '\n' ':')
cat >"$venv/python" <<EOF
#!/bin/sh
# the venv's python with the NVIDIA wheels' libraries and the toolkit's (tools/torch2-venv.sh)
LD_LIBRARY_PATH="${libs}${cuda_lib}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$(cd "$venv" && pwd)/bin/python3" "\$@"
EOF
chmod +x "$venv/python"
"$venv/python" -c 'import torch; print("torch2-venv: torch", torch.__version__, "threads", torch.get_num_threads())'
echo "torch2-venv: use $venv/python (bench/compare_pytorch.py --python $venv/python)"
