#!/usr/bin/env bash
# Export parity with the real PyTorch: train dcgan_fmnist32 for a few iterations, export the
# generator, load it with load_state_dict(strict=True) into the PyTorch DCGAN tutorial's
# Generator (at 32x32, 1 channel) and check it gives what `gan sample` gives for the same z.
# Needs Debian's python3-torch (tools/setup.sh installs it), run with /usr/bin/python3.
set -euo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_export_pytorch
require_python /usr/bin/python3 torch numpy
require_fmnist
train_fmnist_checkpoint "$work/run"
"$gan" export "$ckpt" -o "$work/G.safetensors"

/usr/bin/python3 - "$work" <<'PY'
import sys, numpy as np
work = sys.argv[1]
rng = np.random.default_rng(5)
np.save(f"{work}/z.npy", rng.standard_normal((10, 100, 1, 1)).astype(np.float32))
PY
"$gan" sample "$ckpt" --noise "$work/z.npy" --npy "$work/ours.npy"

/usr/bin/python3 - "$work" <<'PY'
import json, struct, sys
import numpy as np
import torch
import torch.nn as nn

work = sys.argv[1]

def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out

nz, ngf, nc = 100, 64, 1
class Generator(nn.Module):   # the PyTorch DCGAN tutorial's generator, one stage shorter (32x32)
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    def forward(self, x):
        return self.main(x)

g = Generator()
state = load_safetensors(f"{work}/G.safetensors")
g.load_state_dict(state, strict=True)          # raises on any missing/unexpected name or shape
assert state["main.1.num_batches_tracked"].dtype == torch.int64
assert int(state["main.1.num_batches_tracked"]) == 3, int(state["main.1.num_batches_tracked"])
g.eval()
z = torch.from_numpy(np.load(f"{work}/z.npy"))
with torch.no_grad():
    theirs = g(z).numpy()
ours = np.load(f"{work}/ours.npy")
assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
err = float(np.abs(ours - theirs).max())
# tanh outputs in [-1, 1] from FP32 convolutions summed in different orders: 1e-4 is ~100x the
# observed error and far below what a wrong weight layout or BN statistic would give (~1e-1).
print(f"export parity: max abs diff {err:.3g} over {ours.size} values")
assert err < 1e-4, err
PY
echo "1 passed, 0 failed"
