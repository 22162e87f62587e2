#!/usr/bin/env python3
"""The DCGAN tutorial's training iteration in PyTorch on the GPU, timed alone (synthetic data).
Kept for its command line; the model and the loop are bench/compare_pytorch.py's worker (built
from the config). For gan and PyTorch side by side in one run, alternating, use that script:

    python3 bench/compare_pytorch.py --device cuda --gan build-gpu/gan
    python3 bench/compare_pytorch_gpu.py --size 32 --channels 1 --batch 128 --iterations 400
    python3 bench/compare_pytorch_gpu.py --size 64 --channels 3 --batch 64 --mode bf16 --graph

--mode (fp32, tf32 or bf16; --tf32 is --mode tf32) and --graph as the worker's, described in
bench/compare_pytorch.py; bench/gpu_speed.py runs them all against gan.
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
    ap.add_argument("--mode", default="fp32", choices=compare_pytorch.MODES)
    ap.add_argument("--tf32", dest="mode", action="store_const", const="tf32", help="the same as --mode tf32")
    ap.add_argument("--graph", action="store_true", help="also time the step captured in a CUDA graph")
    a = ap.parse_args()
    config = CONFIGS.get((a.size, a.channels))
    if not config:
        sys.exit("compare_pytorch_gpu: no DCGAN config at %dx%d with %d channels (%s)" % (
            a.size, a.size, a.channels, ", ".join("%dx%dx%d" % (s, s, c) for s, c in CONFIGS)))
    try:
        r = compare_pytorch.worker(argparse.Namespace(config=config, batch=a.batch, device="cuda", threads=0,
                                                      mode=a.mode, graph=a.graph, iterations=a.iterations,
                                                      warmup=20))
    except compare_pytorch.WorkerRefusal as e:
        sys.exit("compare_pytorch_gpu: %s" % e)
    print("pytorch %s %s (dcgan %dx%dx%d) batch %d (%s): %.3f ms/it, %.0f img/s" % (
        r["torch"], config, a.size, a.size, a.channels, a.batch, r["settings"], r["ms_per_it"],
        1e3 * a.batch / r["ms_per_it"]))
    if "graph_ms_per_it" in r:
        print("pytorch CUDA graph (%s): %.3f ms/it, %.0f img/s" % (
            r["graph_settings"], r["graph_ms_per_it"], 1e3 * a.batch / r["graph_ms_per_it"]))
    elif "graph_error" in r:
        sys.exit("compare_pytorch_gpu: the CUDA graph failed: %s" % r["graph_error"])


if __name__ == "__main__":
    main()
