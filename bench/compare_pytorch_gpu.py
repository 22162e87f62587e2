#!/usr/bin/env python3
"""The DCGAN tutorial's training iteration in PyTorch on the GPU, timed, for comparison with
`gan train ... --device cuda` on the same machine. Synthetic data (uniform in [-1, 1]) so no
dataset is needed; the iteration is the tutorial's, line for line.

    python3 bench/compare_pytorch_gpu.py --size 32 --channels 1 --batch 128 --iterations 400
"""
import argparse
import time

import torch
import torch.nn as nn


def nets(size, nc, nz=100, ngf=64, ndf=64):
    if size == 64:
        g = [nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
             nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True)]
        d_tail = [nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
                  nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False)]
    else:
        g = [nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True)]
        d_tail = [nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False)]
    g += [nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
          nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
          nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
    d = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
         nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
         nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True)]
    d += d_tail + [nn.Sigmoid()]
    return nn.Sequential(*g), nn.Sequential(*d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    netG, netD = (m.to(dev) for m in nets(a.size, a.channels))
    crit = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(a.batch, a.channels, a.size, a.size, device=dev) * 2 - 1

    def step():
        netD.zero_grad()
        label = torch.full((a.batch,), 1.0, device=dev)
        out = netD(real).view(-1)
        crit(out, label).backward()
        fake = netG(torch.randn(a.batch, 100, 1, 1, device=dev))
        label.fill_(0.0)
        out = netD(fake.detach()).view(-1)
        crit(out, label).backward()
        optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        out = netD(fake).view(-1)
        crit(out, label).backward()
        optG.step()

    for _ in range(20):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.iterations):
        step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print("pytorch %s dcgan %dx%dx%d batch %d (tf32 %s): %.3f ms/it, %.0f img/s" % (
        torch.__version__, a.size, a.size, a.channels, a.batch, a.tf32, 1e3 * dt / a.iterations,
        a.iterations * a.batch / dt))


if __name__ == "__main__":
    main()
