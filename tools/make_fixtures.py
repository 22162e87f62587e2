#!/usr/bin/python3
"""Writes the PyTorch parity fixtures under tests/fixtures/ (committed; the C tests read them with
our safetensors reader, so they need no PyTorch).

Run with Debian's PyTorch:  /usr/bin/python3 tools/make_fixtures.py

Each fixture holds inputs, weights, outputs and gradients as F32 tensors (I64 for counters), and in
its metadata the layer sequence in our grammar ("layers"), the per-sample input shape ("input":
"c,h,w"), the batch ("batch") and whether the pass is in training mode ("training"). The upstream
gradient is a fixed random tensor "dy"; L = sum(y * dy), so "dx" and "grad.<name>" are dL/dx and
dL/dparam. Random draws PyTorch makes itself (dropout masks) are carried in ("mask").
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, value in tensors.items():
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if arr.dtype == np.int64:
            dtype = "I64"
        else:
            arr, dtype = arr.astype(np.float32), "F32"
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def layer_fixture(name, module, layers, input_shape, batch, training=True, low=-1.0, high=1.0,
                  away_from_zero=False, dropout_p=None, extra_buffers=None):
    """One module (or a small nn.Sequential) forward and backward."""
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))  # stable across runs
    x = torch.rand((batch,) + tuple(input_shape), generator=g) * (high - low) + low
    if away_from_zero:
        x = torch.where(x.abs() < 0.05, torch.full_like(x, 0.5), x)
    x.requires_grad_(True)
    seq = module if isinstance(module, nn.Sequential) else nn.Sequential(module)
    if extra_buffers:
        for key, value in extra_buffers.items():
            dict(seq.named_buffers())[key].copy_(value)
    seq.train(training)
    tensors = {}
    for key, value in seq.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            tensors["before." + key] = value.clone()
    y = seq(x)
    dy = torch.rand(y.shape, generator=g) * 2 - 1
    (y * dy).sum().backward()
    tensors.update({"x": x, "y": y, "dy": dy, "dx": x.grad})
    for key, p in seq.named_parameters():
        tensors["grad." + key] = p.grad
    for key, value in seq.state_dict().items():
        if "running" in key:
            tensors["after." + key] = value
    if dropout_p is not None:
        tensors["mask"] = (y / x).detach()
    meta = {"layers": layers, "input": ",".join(str(v) for v in input_shape), "batch": batch,
            "training": int(training)}
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, meta)


MAX_STORED = 65536
MAX_WEIGHTS_STORED = 4096


def sample_stride(count, most):
    """Every k-th element keeps at most `most` of `count`. k is odd: conv weights are
    [a, b, 4, 4] with a, b powers of two, so an odd k visits every kernel tap and every channel
    (an even k would only ever see even taps, e.g. k = 8 sees kernel positions 0 and 8 only)."""
    stride = max(1, -(-count // most))
    return stride if stride == 1 or stride % 2 else stride + 1


def hash_uniform(count, seed):
    """Values in [-1, 1) from an integer hash of (index, seed): the C test computes the same
    weights (tests/test_parity_dcgan.c, hash_uniform), so the big networks' weights need not be
    stored. Exact in both: integer arithmetic, then a 24-bit value scaled by a power of two."""
    i = np.arange(count, dtype=np.uint64)
    x = (i * np.uint64(2654435761) + np.uint64(seed) * np.uint64(40503) + np.uint64(1)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(12)
    x = (x * np.uint64(0x297A2D39)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    return ((x >> np.uint64(8)).astype(np.float64) / 8388608.0 - 1.0).astype(np.float32)


def dcgan_fixture(name, layers, seq, input_shape, batch):
    """A whole network, weights DCGAN-like (std 0.02 around 0, BN weight around 1) from
    hash_uniform with seed = module index; large gradients are stored every k-th element
    ("stride.<name>"), and the weights every j-th ("weight.<name>", "wstride.<name>") so the C
    test can prove it starts from PyTorch's exact weights before comparing anything else.
    All of the weights and gradients would be 14 MB; the samples keep the file under 1 MB."""
    init_hash_weights(seq)
    g = torch.Generator().manual_seed(11)
    x = (torch.rand((batch,) + tuple(input_shape), generator=g) * 2 - 1).requires_grad_(True)
    seq.train(True)
    y = seq(x)
    dy = torch.rand(y.shape, generator=g) * 2 - 1
    (y * dy).sum().backward()
    tensors = {"x": x, "y": y, "dy": dy, "dx": x.grad}
    meta = {"layers": layers, "input": ",".join(str(v) for v in input_shape), "batch": batch,
            "training": 1, "weights": "hash_uniform"}
    for key, p in seq.named_parameters():
        flat = p.grad.reshape(-1)
        stride = sample_stride(flat.numel(), MAX_STORED)
        tensors["grad." + key] = flat[::stride]
        meta["stride." + key] = stride
        wflat = p.detach().reshape(-1)
        wstride = sample_stride(wflat.numel(), MAX_WEIGHTS_STORED)
        tensors["weight." + key] = wflat[::wstride]
        meta["wstride." + key] = wstride
    for key, value in seq.state_dict().items():
        if "running" in key:
            tensors["after." + key] = value
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, meta)


def init_hash_weights(seq):
    """DCGAN-like weights from hash_uniform (seed = module index): conv weights uniform with std
    0.02, BN weight 1 + the same, BN bias 0."""
    with torch.no_grad():
        for index, m in seq.named_children():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                u = hash_uniform(m.weight.numel(), int(index))
                m.weight.copy_(torch.from_numpy(0.02 * 1.7320508 * u).reshape(m.weight.shape))
            elif isinstance(m, nn.BatchNorm2d):
                u = hash_uniform(m.weight.numel(), int(index))
                m.weight.copy_(torch.from_numpy(1.0 + 0.02 * 1.7320508 * u))
                m.bias.zero_()


def train_steps_fixture(_, nz, batch=8, steps=3):
    """Three iterations of the PyTorch DCGAN tutorial's training loop on dcgan_fmnist32 (batch 8),
    from hash_uniform weights, with given real batches and noise: the losses and D outputs of each
    step and every weight after each step (large tensors every k-th element).

    The loop runs in float64 (same float32 starting weights, inputs and noise; results stored as
    float32). In float32, PyTorch's own rounding flips the sign of two of D's step-0 gradients
    (2.weight[105913]: -8.3e-05 in FP32, +2.3e-04 in FP64), Adam's first step turns each into a
    2 lr = 4e-4 weight difference, and G's step-0 gradients through that D then differ from FP64
    by up to 1.2e-2 (61-91% of elements beyond 1e-3 relative): an FP32 reference is a coin toss
    for any FP32 implementation, while our CPU backend agrees with FP64 (2.311e-04 there)."""
    ngf = ndf = 64
    netG = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False), nn.Tanh())
    netD = nn.Sequential(
        nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    init_hash_weights(netG)
    init_hash_weights(netD)
    netG.double()
    netD.double()
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(21)
    tensors, meta = {}, {"steps": steps, "batch": batch}
    for step in range(steps):
        real = torch.rand((batch, 1, 32, 32), generator=g) * 2 - 1
        noise = torch.randn((batch, nz, 1, 1), generator=g)
        tensors["real.%d" % step] = real
        tensors["noise.%d" % step] = noise
        real, noise = real.double(), noise.double()
        # the tutorial's iteration, line for line
        netD.zero_grad()
        label = torch.full((batch,), 1.0, dtype=torch.float64)
        output = netD(real).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        fake = netG(noise)
        label.fill_(0.0)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        for key, prm in netG.named_parameters():
            flat = prm.grad.reshape(-1)
            stride = max(1, -(-flat.numel() // 16384))
            tensors["Ggrad.%s.%d" % (key, step)] = flat[::stride].clone()
        optG.step()
        tensors["stats.%d" % step] = torch.tensor([errD.item(), errG.item(), D_x, D_G_z1, D_G_z2])
        for prefix, net in (("G", netG), ("D", netD)):
            for key, value in net.state_dict().items():
                if key.endswith("num_batches_tracked"):
                    continue
                flat = value.reshape(-1)
                stride = max(1, -(-flat.numel() // 16384))
                tensors["%s.%s.%d" % (prefix, key, step)] = flat[::stride].clone()
                meta["stride.%s.%s" % (prefix, key)] = stride
    write_safetensors(os.path.join(OUT, "dcgan_fmnist32_train3.safetensors"), tensors, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cases = [
        ("conv_k3_s1_p1_bias", nn.Conv2d(3, 4, 3, 1, 1, bias=True), "conv(4,3,1,1,bias)", (3, 7, 5)),
        ("conv_k4_s2_p1", nn.Conv2d(2, 5, 4, 2, 1, bias=False), "conv(5,4,2,1)", (2, 9, 6)),
        ("conv_k3_s2_p0", nn.Conv2d(3, 2, 3, 2, 0, bias=False), "conv(2,3,2,0)", (3, 8, 7)),
        ("convt_k4_s2_p1", nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False), "convt(3,4,2,1)", (4, 3, 5)),
        ("convt_k4_s1_p0_bias", nn.ConvTranspose2d(6, 3, 4, 1, 0, bias=True), "convt(3,4,1,0,bias)", (6, 1, 1)),
        ("convt_k3_s2_p0", nn.ConvTranspose2d(2, 3, 3, 2, 0, bias=False), "convt(3,3,2,0)", (2, 4, 3)),
        ("linear", nn.Linear(7, 5, bias=False), "linear(5)", (7, 1, 1)),
        ("linear_bias", nn.Linear(6, 4, bias=True), "linear(4,bias)", (6, 1, 1)),
    ]
    for name, module, layers, shape in cases:
        if isinstance(module, nn.Linear):
            # our linear takes [N, F, 1, 1]: PyTorch's takes [N, F]; wrap with a flatten
            seq = nn.Sequential(nn.Flatten(), module)
            # nn.Flatten would take index 0: name the Linear's parameters as module 0 instead
            seq = nn.Sequential()
            seq.add_module("0", module)
            wrapped = nn.Sequential(nn.Flatten(), seq)
            x_shape = shape
            g = torch.Generator().manual_seed(1)
            x = (torch.rand((3,) + x_shape, generator=g) * 2 - 1).requires_grad_(True)
            y = wrapped(x)
            dy = torch.rand(y.shape, generator=g) * 2 - 1
            (y * dy).sum().backward()
            tensors = {"x": x, "y": y.reshape(3, -1, 1, 1), "dy": dy.reshape(3, -1, 1, 1), "dx": x.grad}
            for key, value in seq.state_dict().items():
                tensors["before." + key] = value
            for key, p in seq.named_parameters():
                tensors["grad." + key] = p.grad
            write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors,
                              {"layers": layers, "input": "%d,1,1" % shape[0], "batch": 3, "training": 1})
        else:
            layer_fixture(name, module, layers, shape, 3)
    bn2 = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn2.weight.uniform_(0.5, 1.5)
        bn2.bias.uniform_(-0.5, 0.5)
    layer_fixture("bn2d_train", bn2, "bn", (4, 5, 3), 3, low=-2, high=3)
    bn2e = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn2e.weight.uniform_(0.5, 1.5)
        bn2e.bias.uniform_(-0.5, 0.5)
        bn2e.running_mean.uniform_(-0.5, 0.5)
        bn2e.running_var.uniform_(0.5, 2.0)
    layer_fixture("bn2d_eval", bn2e, "bn", (4, 5, 3), 3, training=False)
    bn1 = nn.BatchNorm1d(6)
    with torch.no_grad():
        bn1.weight.uniform_(0.5, 1.5)
        bn1.bias.uniform_(-0.5, 0.5)
    # BatchNorm1d on [N, F]: our [N, F, 1, 1] is the same data; record through a view
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(5, 6, generator=g) * 4 - 1).requires_grad_(True)
    seq = nn.Sequential()
    seq.add_module("0", bn1)
    tensors = {"before." + k: v.clone() for k, v in seq.state_dict().items() if "num_batches" not in k}
    y = seq(x)
    dy = torch.rand(y.shape, generator=g) * 2 - 1
    (y * dy).sum().backward()
    tensors.update({"x": x.reshape(5, 6, 1, 1), "y": y.reshape(5, 6, 1, 1), "dy": dy.reshape(5, 6, 1, 1),
                    "dx": x.grad.reshape(5, 6, 1, 1)})
    for k, p in seq.named_parameters():
        tensors["grad." + k] = p.grad
    for k, v in seq.state_dict().items():
        if "running" in k:
            tensors["after." + k] = v
    write_safetensors(os.path.join(OUT, "bn1d_train.safetensors"), tensors,
                      {"layers": "bn", "input": "6,1,1", "batch": 5, "training": 1})
    layer_fixture("relu", nn.ReLU(), "relu", (2, 3, 5), 3, away_from_zero=True)
    layer_fixture("lrelu", nn.LeakyReLU(0.2), "lrelu(0.2)", (2, 3, 5), 3, away_from_zero=True)
    layer_fixture("tanh", nn.Tanh(), "tanh", (2, 3, 5), 3, low=-3, high=3)
    layer_fixture("sigmoid", nn.Sigmoid(), "sigmoid", (2, 3, 5), 3, low=-5, high=5)
    layer_fixture("dropout", nn.Dropout(0.3), "dropout(0.3)", (4, 3, 5), 3, away_from_zero=True, dropout_p=0.3)

    # BCE from logits, and Sigmoid + BCELoss away from saturation.
    g = torch.Generator().manual_seed(5)
    logits = (torch.rand(16, generator=g) * 8 - 4).requires_grad_(True)
    tensors = {"logits": logits.detach().clone()}
    for target in (1.0, 0.0, 0.9):
        t = torch.full((16,), target)
        l1 = nn.BCEWithLogitsLoss()(logits, t)
        (g1,) = torch.autograd.grad(l1, logits)
        p = torch.sigmoid(logits)
        l2 = nn.BCELoss()(p, t)
        (g2,) = torch.autograd.grad(l2, logits)
        key = str(target).replace(".", "p")
        tensors.update({"loss_with_logits." + key: l1.reshape(1), "grad_with_logits." + key: g1,
                        "loss_sigmoid_bce." + key: l2.reshape(1), "grad_sigmoid_bce." + key: g2,
                        "prob_mean." + key: p.mean().reshape(1)})
    write_safetensors(os.path.join(OUT, "bce.safetensors"), tensors, {"targets": "1p0,0p0,0p9"})

    # Adam: 5 steps from given gradients, two settings.
    for name, kwargs in (("adam_dcgan", dict(lr=2e-4, betas=(0.5, 0.999), eps=1e-8)),
                         ("adam_default", dict(lr=1e-3))):
        g = torch.Generator().manual_seed(9)
        w = nn.Parameter(torch.rand(37, generator=g) * 2 - 1)
        opt = torch.optim.Adam([w], **kwargs)
        tensors = {"param.0": w.detach().clone()}
        for step in range(1, 6):
            grad = (torch.rand(37, generator=g) * 2 - 1) * (10.0 ** -step)
            w.grad = grad.clone()
            opt.step()
            tensors["grad.%d" % step] = grad
            tensors["param.%d" % step] = w.detach().clone()
        meta = {"lr": kwargs["lr"], "beta1": kwargs.get("betas", (0.9, 0.999))[0],
                "beta2": kwargs.get("betas", (0.9, 0.999))[1], "eps": kwargs.get("eps", 1e-8), "steps": 5}
        write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, meta)

    # The dcgan_fmnist32 generator and discriminator, batch 4.
    nz, ngf, ndf, nc = 100, 64, 64, 1
    g_seq = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    d_seq = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=False),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    dcgan_fixture("dcgan_fmnist32_G",
                  "convt(256,4,1,0) bn relu convt(128,4,2,1) bn relu convt(64,4,2,1) bn relu convt(1,4,2,1) tanh",
                  g_seq, (nz, 1, 1), 4)
    dcgan_fixture("dcgan_fmnist32_D",
                  "conv(64,4,2,1) lrelu(0.2) conv(128,4,2,1) bn lrelu(0.2) conv(256,4,2,1) bn lrelu(0.2) "
                  "conv(1,4,1,0) sigmoid", d_seq, (nc, 32, 32), 4)
    train_steps_fixture(g_seq.__class__, nz)

    # More geometry (added later: seeded by name so that the fixtures above stay byte for byte).
    more = [
        ("conv_k4_s1_p0", lambda: nn.Conv2d(3, 4, 4, 1, 0, bias=False), "conv(4,4,1,0)", (3, 6, 9)),
        ("conv_k4_s2_p0_bias", lambda: nn.Conv2d(2, 3, 4, 2, 0, bias=True), "conv(3,4,2,0,bias)", (2, 10, 7)),
        ("convt_k3_s1_p1_bias", lambda: nn.ConvTranspose2d(3, 2, 3, 1, 1, bias=True), "convt(2,3,1,1,bias)",
         (3, 4, 6)),
        ("convt_k4_s2_p1_bias", lambda: nn.ConvTranspose2d(2, 3, 4, 2, 1, bias=True), "convt(3,4,2,1,bias)",
         (2, 5, 3)),
    ]
    for name, make, layers, shape in more:
        torch.manual_seed(zlib.crc32(name.encode()))
        layer_fixture(name, make(), layers, shape, 3)
    print("fixtures written to", os.path.normpath(OUT))


if __name__ == "__main__":
    sys.exit(main())
