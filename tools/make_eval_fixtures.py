#!/usr/bin/python3
"""Writes tests/fixtures/eval_ops.safetensors: the evaluation ops of the op table (gan/backend.h),
computed by PyTorch, for tests/test_eval_ops.c (committed; the test needs no PyTorch).

Run with Debian's PyTorch:  /usr/bin/python3 tools/make_eval_fixtures.py

These ops serve the FID Inception (src/eval/inception.c), which only runs forward: there is no
gradient to check, so each case holds an input and PyTorch's output (F32), named
"<case>.x" / "<case>.y", with the case's parameters in the metadata ("<case>" -> JSON):

  max_pool.*     F.max_pool2d (kernel, stride, padding; NaN and -inf among the inputs)
  avg_pool.*     F.avg_pool2d with count_include_pad False (pytorch-fid's FID blocks) and True
  global_avg.*   F.adaptive_avg_pool2d(x, (1, 1)) (pytorch-fid's pool3)
  cat.*          torch.cat of three branches along channels ("<case>.x0", .x1, .x2)
  resize.*       F.interpolate(x, size, mode='bilinear', align_corners=False) on floats
  basic_conv.*   pytorch-fid's BasicConv2d: conv (no bias) + BatchNorm2d(eps=0.001, eval) + ReLU,
                 with its weights ("<case>.weight", .bias, .running_mean, .running_var; BN's
                 weight fixed at 1 as the FID weights have no gamma, and "<case>.gamma" for a
                 case with one), 1x7 / 7x1 / 3x3 kernels: the folding of gan's weight loader
                 (w * gamma / sqrt(var + eps), beta - mean * gamma / sqrt(var + eps)) then conv,
                 bias and ReLU must give the same.
"""
import json
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import OUT, hash_uniform, write_safetensors  # noqa: E402

# Inputs of more than this many values are not stored: they are hash_uniform(count, seed) (the C
# test computes the same values, parity_hash_uniform) scaled to the case's range, metadata
# "hash_seed"; outputs of more than this many are stored every SAMPLE_EVERY-th value ("<case>.y"
# holds y.flatten()[::SAMPLE_EVERY], metadata "y_every"), which keeps the file small.
MAX_STORED = 4096
SAMPLE_EVERY = 29


def rand(shape, name, low=-1.0, high=1.0):
    count = 1
    for d in shape:
        count *= d
    if count > MAX_STORED:
        u = torch.from_numpy(hash_uniform(count, zlib.crc32(name.encode()) & 0xFFFF)).reshape(shape)
        return (u + 1) * 0.5 * (high - low) + low
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    return torch.rand(shape, generator=g) * (high - low) + low


def main():
    tensors, meta = {}, {}

    def case(name, params, x_name=None, low=-1.0, high=1.0, **named):
        """Stores the case; a large x is left to the test (hash_seed, low, high), a large y is
        sampled. x must come from rand(shape, x_name or name, low, high)."""
        params = dict(params)
        for key, value in named.items():
            value = value.detach().contiguous()
            if key == "x" and value.numel() > MAX_STORED:
                params.update(hash_seed=zlib.crc32((x_name or name).encode()) & 0xFFFF, low=low, high=high)
                continue
            if key == "y" and value.numel() > MAX_STORED:
                params["y_every"] = SAMPLE_EVERY
                value = value.flatten()[::SAMPLE_EVERY].contiguous()
            tensors[name + "." + key] = value
        meta[name] = json.dumps(params)

    pools = [("k3s2", [2, 3, 13, 11], 3, 2, 0), ("k3s1p1", [2, 3, 7, 9], 3, 1, 1),
             ("k3s2_inception", [1, 4, 147, 147], 3, 2, 0), ("k3s1p1_8x8", [2, 5, 8, 8], 3, 1, 1)]
    for tag, shape, k, s, p in pools:
        x = rand(shape, "max_pool." + tag, -3, 3)
        flat = x.view(-1)
        flat[5] = float("nan")  # "nan_at", "ninf_at": set after the hash for a hashed x
        flat[17] = float("-inf")
        case("max_pool." + tag, {"shape": shape, "kernel": k, "stride": s, "pad": p, "nan_at": 5, "ninf_at": 17},
             low=-3, high=3, x=x, y=F.max_pool2d(x, kernel_size=k, stride=s, padding=p))
        x = rand(shape, "avg_pool." + tag, -3, 3)
        for include in (False, True):
            name = "avg_pool.%s_%s" % (tag, "incl" if include else "excl")
            case(name, {"shape": shape, "kernel": k, "stride": s, "pad": p, "count_include_pad": include},
                 x_name="avg_pool." + tag, low=-3, high=3,
                 x=x, y=F.avg_pool2d(x, kernel_size=k, stride=s, padding=p, count_include_pad=include))

    for tag, shape in [("8x8", [3, 70, 8, 8]), ("5x7", [2, 3, 5, 7])]:
        x = rand(shape, "global_avg." + tag, 0, 4)
        case("global_avg." + tag, {"shape": shape}, low=0, high=4, x=x, y=F.adaptive_avg_pool2d(x, (1, 1)))

    parts = [rand([2, c, 4, 5], "cat.%d" % i) for i, c in enumerate((3, 2, 4))]
    case("cat.three", {"channels": [3, 2, 4], "hw": 20, "n": 2},
         x0=parts[0], x1=parts[1], x2=parts[2], y=torch.cat(parts, 1))

    resizes = [("28to299", [2, 1, 28, 28], [299, 299]), ("47x33to13x20", [1, 3, 47, 33], [13, 20]),
               ("299same", [1, 2, 299, 299], [299, 299]), ("300x301to299", [1, 3, 300, 301], [299, 299]),
               ("1to5", [1, 2, 1, 1], [5, 5]), ("61x17to299", [1, 3, 61, 17], [299, 299])]
    for tag, shape, size in resizes:
        x = rand(shape, "resize." + tag)
        case("resize." + tag, {"shape": shape, "size": size},
             x=x, y=F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False))

    convs = [("1x7", [2, 6, 9, 11], 5, (1, 7), (0, 3), 1, False),
             ("7x1", [2, 6, 9, 11], 5, (7, 1), (3, 0), 1, False),
             ("3x3s2", [2, 3, 15, 13], 4, (3, 3), (0, 0), 2, False),
             ("1x1_gamma", [2, 7, 6, 5], 3, (1, 1), (0, 0), 1, True)]
    for tag, shape, c_out, k, p, s, with_gamma in convs:
        name = "basic_conv." + tag
        torch.manual_seed(zlib.crc32(name.encode()))
        conv = nn.Conv2d(shape[1], c_out, k, stride=s, padding=p, bias=False)
        bn = nn.BatchNorm2d(c_out, eps=0.001)
        with torch.no_grad():
            bn.weight.copy_(rand([c_out], name + ".gamma", 0.5, 1.5) if with_gamma else torch.ones(c_out))
            bn.bias.copy_(rand([c_out], name + ".beta", -0.5, 0.5))
            bn.running_mean.copy_(rand([c_out], name + ".mean", -0.3, 0.3))
            bn.running_var.copy_(rand([c_out], name + ".var", 0.05, 2.0))
        seq = nn.Sequential(conv, bn, nn.ReLU()).eval()
        x = rand(shape, name + ".x")
        with torch.no_grad():
            y = seq(x)
        extra = {"gamma": bn.weight} if with_gamma else {}
        case(name, {"shape": shape, "c_out": c_out, "kernel": list(k), "pad": list(p), "stride": s,
                    "eps": 0.001}, x=x, y=y, weight=conv.weight, bias=bn.bias,
             running_mean=bn.running_mean, running_var=bn.running_var, **extra)

    meta["torch"] = torch.__version__
    path = os.path.join(OUT, "eval_ops.safetensors")
    write_safetensors(path, tensors, meta)
    print("wrote", os.path.normpath(path), "with", len(tensors), "tensors")


if __name__ == "__main__":
    sys.exit(main())
