#!/usr/bin/env python3
"""The DCGAN tutorial's training iteration in PyTorch on the GPU, timed alone (synthetic data).
Kept for its command line; the model and the loop are bench/compare_pytorch.py's worker (built
from the config). For gan and PyTorch side by side in one run, alternating, use that script:

    python3 bench/compare_pytorch.py --device cuda --gan build-gpu/gan
    python3 bench/compare_pytorch_gpu.py --size 32 --channels 1 --batch 128 --iterations 400
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_pytorch  # noqa: E402

CONFIGS = {(64, 3): "dcgan_celeba64", (32, 1): "dcgan_fmnist32", (32, 3): "dcgan_cifar32"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()
    config = CONFIGS.get((a.size, a.channels))
    if not config:
        sys.exit("compare_pytorch_gpu: no DCGAN config at %dx%d with %d channels (%s)" % (
            a.size, a.size, a.channels, ", ".join("%dx%dx%d" % (s, s, c) for s, c in CONFIGS)))
    r = compare_pytorch.worker(argparse.Namespace(config=config, batch=a.batch, device="cuda", threads=0,
                                                  tf32=a.tf32, iterations=a.iterations, warmup=20))
    print("pytorch %s %s (dcgan %dx%dx%d) batch %d (tf32 %s): %.3f ms/it, %.0f img/s" % (
        r["torch"], config, a.size, a.size, a.channels, a.batch, a.tf32, r["ms_per_it"],
        1e3 * a.batch / r["ms_per_it"]))


if __name__ == "__main__":
    main()
