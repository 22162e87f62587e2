#!/usr/bin/env python3
"""gan against PyTorch: the same GAN training iteration, on the same machine, in the same run.

For each config, rounds alternate `gan bench train CONFIG` (ours) and this script's PyTorch
worker (theirs, once per thread count), each in its own process, so that both see the same noisy
machine; the speedup is taken per round (PyTorch's best thread count of that round over ours) and
its median over the rounds is reported, with our GFLOP/s and share of the sgemm peak that gan
measures in the same process.

The PyTorch model is built from the config itself (the same layer sequence as nn.Sequential:
conv -> Conv2d, convt -> ConvTranspose2d, bn -> BatchNorm2d/1d, lrelu -> LeakyReLU(inplace), ...),
so dcgan_celeba64 is the DCGAN tutorial's Generator/Discriminator, dcgan_fmnist32 its one stage
shorter 1-channel copy (tools/make_fixtures.py train_steps_fixture writes the same by hand), and
the parameter counts are checked against gan's. The loop is the tutorial's: BCELoss on the
Sigmoid output, D on real (label 1), D on G(z).detach() (label 0), D's Adam step, D on G(z) with
label 1 through D into G, G's Adam step; Adam as the config says (lr 2e-4, betas (0.5, 0.999)).
Data: a fixed uniform [-1, 1) real batch; noise drawn every iteration (normal or uniform, as the
config says). Weights initialised as the config says (DCGAN N(0, 0.02) or PyTorch's default).

CPU: Debian's python3-torch through /usr/bin/python3; PyTorch at each of --threads
(torch.set_num_threads), its best counted; gan at its default (every core) or, with --gan-threads,
at each of those counts (OMP_NUM_THREADS and OPENBLAS_NUM_THREADS; the sgemm peak gan measures then
uses the same count), its best counted. CUDA (--device cuda, needs torch.cuda.is_available()):
cudnn.benchmark on, TF32 off unless --tf32 (gan gets train.precision=tf32
train.deterministic=false then).

    /usr/bin/python3 bench/compare_pytorch.py                       # the four configs, cpu
    /usr/bin/python3 bench/compare_pytorch.py --configs dcgan_fmnist32:128 --rounds 5
    python3 bench/compare_pytorch.py --device cuda --gan build-gpu/gan
    python3 bench/compare_pytorch.py --worker --config dcgan_fmnist32 --batch 128 --threads 1
"""
import argparse
import configparser
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIGS = "dcgan_celeba64:64,dcgan_celeba64:128,dcgan_fmnist32:128,mlp_mnist:64"
SUMMARY = re.compile(r"^train (\S+) batch (\d+): ([\d.]+) ms/it, ([\d.]+) img/s, ([\d.]+) GFLOP/s "
                     r"\(([\d.]+)% of sgemm peak\)$")


# ---- the config, as gan reads it ---------------------------------------------------------------
def config_path(name):
    if os.path.isfile(name):
        return name
    path = os.path.join(ROOT, "configs", name if name.endswith(".ini") else name + ".ini")
    if not os.path.isfile(path):
        sys.exit("compare_pytorch: no config %r (a path, or a name in %s/configs)" % (name, ROOT))
    return path


def read_config(name):
    """The [model] and [train] keys the iteration needs, with gan's defaults (src/config.c)."""
    ini = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    ini.read(config_path(name))
    model, data, train = ini["model"], ini["data"], ini["train"]
    return {
        "name": os.path.splitext(os.path.basename(config_path(name)))[0],
        "nz": model.getint("nz", 100),
        "noise": model.get("noise", "normal"),
        "init": model.get("init", "dcgan"),
        "generator": " ".join(model["generator"].split()),
        "discriminator": " ".join(model["discriminator"].split()),
        "image_size": data.getint("image_size", 64),
        "channels": data.getint("channels", 3),
        "batch_size": train.getint("batch_size", 128),
        "lr_g": train.getfloat("lr_g", 2e-4), "lr_d": train.getfloat("lr_d", 2e-4),
        "beta1_g": train.getfloat("beta1_g", 0.5), "beta1_d": train.getfloat("beta1_d", 0.5),
        "beta2_g": train.getfloat("beta2_g", 0.999), "beta2_d": train.getfloat("beta2_d", 0.999),
        "d_steps": train.getint("d_steps", 1),
    }


def build(nn, text, shape):
    """nn.Sequential of gan's layer grammar (include/gan/nn.h) on per-sample input `shape` (C, H, W).
    Returns the module and whether its input is flat (a Linear first takes [N, F])."""
    layers, flat = [], None
    c, h, w = shape
    for name, args in re.findall(r"([a-z]+)(?:\(([^)]*)\))?", text):
        a = [x.strip() for x in args.split(",")] if args else []
        bias = "bias" in a
        nums = [float(x) for x in a if x != "bias"]
        if name in ("conv", "convt"):
            out, k, s, p = (int(v) for v in nums)
            if name == "conv":
                layers.append(nn.Conv2d(c, out, k, s, p, bias=bias))
                h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            else:
                layers.append(nn.ConvTranspose2d(c, out, k, s, p, bias=bias))
                h, w = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
            c = out
            flat = False if flat is None else flat
        elif name == "linear":
            layers.append(nn.Linear(c * h * w, int(nums[0]), bias=bias))
            c, h, w = int(nums[0]), 1, 1
            flat = True if flat is None else flat
        elif name == "bn":
            is_flat = layers and isinstance(layers[-1], nn.Linear)
            layers.append(nn.BatchNorm1d(c) if is_flat else nn.BatchNorm2d(c))
        elif name == "relu":
            layers.append(nn.ReLU(True))
        elif name == "lrelu":
            layers.append(nn.LeakyReLU(nums[0], True))
        elif name == "tanh":
            layers.append(nn.Tanh())
        elif name == "sigmoid":
            layers.append(nn.Sigmoid())
        elif name == "dropout":
            layers.append(nn.Dropout(nums[0]))
        elif name == "flatten":
            layers.append(nn.Flatten())
            c, h, w = c * h * w, 1, 1
        elif name == "reshape":
            c, h, w = (int(v) for v in nums)
            layers.append(nn.Unflatten(1, (c, h, w)))
        else:
            sys.exit("compare_pytorch: unknown layer %r in %r" % (name, text))
    return nn.Sequential(*layers), bool(flat)


# ---- the PyTorch worker: one measurement in its own process --------------------------------------
def worker(a):
    import torch
    import torch.nn as nn
    cfg = read_config(a.config)
    batch = a.batch or cfg["batch_size"]
    if a.device == "cpu":
        torch.set_num_threads(a.threads)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
    dev = torch.device(a.device)
    torch.manual_seed(999)
    image = (cfg["channels"], cfg["image_size"], cfg["image_size"])
    net_g, z_flat = build(nn, cfg["generator"], (cfg["nz"], 1, 1))
    net_d, _ = build(nn, cfg["discriminator"], image)
    if cfg["init"] == "dcgan":  # the tutorial's weights_init
        for m in list(net_g.modules()) + list(net_d.modules()):
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
    net_g, net_d = net_g.to(dev), net_d.to(dev)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=cfg["lr_d"], betas=(cfg["beta1_d"], cfg["beta2_d"]))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=cfg["lr_g"], betas=(cfg["beta1_g"], cfg["beta2_g"]))
    real = torch.rand(batch, *image, device=dev) * 2 - 1
    z_shape = (batch, cfg["nz"]) if z_flat else (batch, cfg["nz"], 1, 1)
    draw = torch.rand if cfg["noise"] == "uniform" else torch.randn
    label = torch.empty(batch, device=dev)

    def step():  # the tutorial's iteration (k D steps, then one G step on the last fake)
        for _ in range(cfg["d_steps"]):
            net_d.zero_grad()
            out = net_d(real).view(-1)
            criterion(out, label.fill_(1.0)).backward()
            fake = net_g(draw(*z_shape, device=dev))
            out = net_d(fake.detach()).view(-1)
            criterion(out, label.fill_(0.0)).backward()
            opt_d.step()
        net_g.zero_grad()
        out = net_d(fake).view(-1)
        criterion(out, label.fill_(1.0)).backward()
        opt_g.step()

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.iterations):
        step()
    sync()
    ms = (time.perf_counter() - t0) * 1e3 / a.iterations
    params = lambda m: sum(p.numel() for p in m.parameters())
    return {"ms_per_it": ms, "threads": torch.get_num_threads(), "params_g": params(net_g),
            "params_d": params(net_d), "torch": torch.__version__}


def torch_facts(python):
    """Which libraries Debian's torch runs the convolutions and GEMMs on (torch.__config__.show())."""
    code = r"""
import torch, torch.nn as nn
x = torch.randn(2, 8, 8, 8); (nn.Conv2d(8, 8, 4, 2, 1)(x).sum() + (x.view(16, 64) @ x.view(64, 16)).sum())
libs = sorted(set(l.split()[-1] for l in open('/proc/self/maps')
                  if any(k in l for k in ('blas', 'mkl', 'dnnl', 'gomp', 'cudnn', 'cublas'))))
import re
cfg = torch.__config__.show()
show = [l.strip(' -') for l in cfg.splitlines() if 'MKL-DNN' in l or 'CPU capability' in l or 'cuDNN' in l]
show += re.findall(r'(?:BLAS_INFO|USE_MKLDNN|USE_CUDNN)=[^,]*', cfg)
print('torch %s; cuda available %s; mkldnn %s' % (torch.__version__, torch.cuda.is_available(),
      torch.backends.mkldnn.is_available()))
print('libraries loaded: ' + ', '.join(libs))
print('torch.__config__.show(): ' + '; '.join(show))
"""
    r = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return (r.stdout.strip() or r.stderr.strip()).splitlines()


# ---- the driver ------------------------------------------------------------------------------------
def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit("compare_pytorch: %s failed (%d):\n%s%s" % (shlex.join(cmd), r.returncode, r.stdout[-3000:],
                                                             r.stderr[-3000:]))
    return r.stdout


def ours(a, config, batch, threads, iterations, warmup):
    """`gan bench train` once; threads > 0 pins OpenMP and OpenBLAS to that many (the sgemm peak it
    measures then uses as many), 0 leaves gan's default (every core)."""
    env = dict(os.environ)
    pin = ["OMP_NUM_THREADS=%d" % threads, "OPENBLAS_NUM_THREADS=%d" % threads] if threads else []
    env.update(x.split("=") for x in pin)
    cmd = [a.gan, "bench", "train", config, "train.batch_size=%d" % batch, "--device", a.device,
           "--iterations", str(iterations), "--warmup", str(warmup), "--rounds", "1"]
    if a.tf32:
        cmd += ["train.precision=tf32", "train.deterministic=false"]
    out = run(cmd, env)
    m = [SUMMARY.match(l) for l in out.splitlines()]
    m = [x for x in m if x]
    params = re.search(r"model\s+: G (\d+) parameters, D (\d+) parameters", out)
    if len(m) != 1 or not params:
        sys.exit("compare_pytorch: no summary line from %s:\n%s" % (shlex.join(cmd), out))
    ms, img, gflops, pct = (float(m[0].group(i)) for i in (3, 4, 5, 6))
    return {"ms": ms, "gflops": gflops, "pct": pct, "params": (int(params.group(1)), int(params.group(2))),
            "cmd": shlex.join(pin + cmd)}


def theirs(a, config, batch, threads, iterations, warmup):
    cmd = [a.python, os.path.abspath(__file__), "--worker", "--config", config, "--batch", str(batch),
           "--device", a.device, "--threads", str(threads), "--iterations", str(iterations),
           "--warmup", str(warmup)]
    if a.tf32:
        cmd.append("--tf32")
    out = json.loads(run(cmd).strip().splitlines()[-1])
    out["cmd"] = shlex.join(cmd)
    return out


def default_iterations(device, config, batch):
    """About 2-5 s of work per measurement on a 2-core CPU; a few hundred iterations on a GPU."""
    if device == "cuda":
        return 200, 20
    if config.startswith("mlp"):
        return 40, 5
    work = batch * (4 if "64" in config else 1)  # celeba64 costs about 4x fmnist32 per image
    return max(2, int(round(600 / work))), 1


def compare(a, config, batch):
    iterations, warmup = default_iterations(a.device, config, batch)
    iterations, warmup = a.iterations or iterations, a.warmup if a.warmup is not None else warmup
    threads = a.threads if a.device == "cpu" else [0]
    rows = []
    print("\n== %s batch %d on %s: %d rounds, %d iterations after %d warm-up each ==" % (
        config, batch, a.device, a.rounds, iterations, warmup), flush=True)
    for r in range(a.rounds):
        each = {n: ours(a, config, batch, n, iterations, warmup) for n in a.gan_threads}
        o = each[min(each, key=lambda n: each[n]["ms"])]
        t = {n: theirs(a, config, batch, n, iterations, warmup) for n in threads}
        if (t[threads[0]]["params_g"], t[threads[0]]["params_d"]) != o["params"]:
            sys.exit("compare_pytorch: %s: PyTorch's model has %d + %d parameters, gan's %d + %d: not the same "
                     "architecture" % (config, t[threads[0]]["params_g"], t[threads[0]]["params_d"], *o["params"]))
        best = min(t, key=lambda n: t[n]["ms_per_it"])
        rows.append({"ours": o, "ours_each": each, "theirs": t, "best": best,
                     "speedup": t[best]["ms_per_it"] / o["ms"]})
        print("round %d: ours %s%.1f ms/it (%.1f GFLOP/s, %.1f%% of sgemm peak) | pytorch %s | speedup %.2fx" % (
            r + 1, "".join("%s %.1f, " % (gan_label(n), each[n]["ms"]) for n in each if len(each) > 1) +
            ("best " if len(each) > 1 else ""),
            o["ms"], o["gflops"], o["pct"],
            ", ".join("%s %.1f ms/it" % (label(n), t[n]["ms_per_it"]) for n in threads),
            rows[-1]["speedup"]), flush=True)
    med = lambda xs: statistics.median(xs)
    result = {
        "config": config, "batch": batch,
        "ours_ms": med([x["ours"]["ms"] for x in rows]),
        "ours_gflops": med([x["ours"]["gflops"] for x in rows]),
        "ours_pct": med([x["ours"]["pct"] for x in rows]),
        "ours_each_ms": {n: med([x["ours_each"][n]["ms"] for x in rows]) for n in a.gan_threads},
        "theirs_ms": {n: med([x["theirs"][n]["ms_per_it"] for x in rows]) for n in threads},
        "speedup": med([x["speedup"] for x in rows]),
        "speedup_range": (min(x["speedup"] for x in rows), max(x["speedup"] for x in rows)),
        "torch": rows[0]["theirs"][threads[0]]["torch"],
        "cmd_ours": [rows[0]["ours_each"][n]["cmd"] for n in a.gan_threads],
        "cmd_theirs": [rows[0]["theirs"][n]["cmd"] for n in threads],
    }
    if len(a.gan_threads) > 1:
        for n in a.gan_threads:
            print("ours      : %s median %.1f ms/it" % (gan_label(n), result["ours_each_ms"][n]))
    print("ours      : median %.1f ms/it%s, %.1f GFLOP/s, %.1f%% of sgemm peak" % (
        result["ours_ms"], " (best thread count of each round)" if len(a.gan_threads) > 1 else "",
        result["ours_gflops"], result["ours_pct"]))
    gflop = rows[0]["ours"]["gflops"] * rows[0]["ours"]["ms"] * 1e-3  # useful GFLOP of one iteration
    for n in threads:
        print("pytorch   : %s median %.1f ms/it (%.1f GFLOP/s of the same useful FLOPs)" % (
            label(n), result["theirs_ms"][n], gflop / (result["theirs_ms"][n] * 1e-3)))
    print("speedup   : %.2fx ours over PyTorch at its best thread count (median of the per-round ratios; "
          "range %.2f-%.2f)" % (result["speedup"], *result["speedup_range"]))
    print("commands  : %s" % result["cmd_ours"][0])
    for c in result["cmd_ours"][1:] + result["cmd_theirs"]:
        print("            %s" % c)
    return result


def label(threads):
    return "%dT" % threads if threads else "gpu"


def gan_label(threads):
    return "%dT" % threads if threads else "default threads"


def find_gan():
    for d in ["build", "build-bench"] + sorted(x for x in os.listdir(ROOT) if x.startswith("build")):
        path = os.path.join(ROOT, d, "gan")
        if os.access(path, os.X_OK):
            return path
    sys.exit("compare_pytorch: no gan binary under %s/build*/ (build it, or pass --gan)" % ROOT)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="CONFIG:BATCH,... (default %(default)s)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="PyTorch thread counts on cpu (default 1,2)")
    ap.add_argument("--gan-threads", default="0", help="gan's thread counts (OMP_NUM_THREADS and "
                    "OPENBLAS_NUM_THREADS; 0: gan's default, every core), its best counted (default 0)")
    ap.add_argument("--iterations", type=int, default=0, help="per measurement (default: by config)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--gan", default=None, help="the gan binary (default: build/gan, else build*/gan)")
    ap.add_argument("--python", default=None, help="python for the PyTorch worker (default: this one)")
    ap.add_argument("--tf32", action="store_true", help="cuda: TF32 for PyTorch, train.precision=tf32 train.deterministic=false for gan")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.threads = int(a.threads)
        a.iterations = a.iterations or 10
        a.warmup = 2 if a.warmup is None else a.warmup
        print(json.dumps(worker(a)))
        return
    a.threads = [int(t) for t in a.threads.split(",")]
    a.gan_threads = [int(t) for t in a.gan_threads.split(",")]
    a.gan = os.path.abspath(a.gan or find_gan())
    a.python = a.python or sys.executable
    print("machine   : " + machine())
    for line in run([a.gan, "info", "--no-bench"]).splitlines():
        if "BLAS" in line or "OpenMP" in line:
            print("gan info  : " + line.strip())
    for line in torch_facts(a.python):
        print("pytorch   : " + line)
    print("env       : OPENBLAS_CORETYPE=%s OMP_NUM_THREADS=%s" % (
        os.environ.get("OPENBLAS_CORETYPE", "(unset)"), os.environ.get("OMP_NUM_THREADS", "(unset)")))
    print("gan       : %s" % a.gan)
    print("started   : %s" % time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    results = []
    for item in a.configs.split(","):
        config, _, batch = item.partition(":")
        results.append(compare(a, config, int(batch) if batch else read_config(config)["batch_size"]))
    threads = a.threads if a.device == "cpu" else [0]
    print("\n| config | batch | ours ms/it | %s | speedup vs PyTorch best | ours GFLOP/s | %% of sgemm peak |" %
          " | ".join("PyTorch %s ms/it" % label(n) for n in threads))
    print("|---|---|---|%s---|---|---|" % ("---|" * len(threads)))
    for r in results:
        print("| %s | %d | %.1f | %s | %.2fx (%.2f-%.2f) | %.1f | %.1f%% |" % (
            r["config"], r["batch"], r["ours_ms"], " | ".join("%.1f" % r["theirs_ms"][n] for n in threads),
            r["speedup"], *r["speedup_range"], r["ours_gflops"], r["ours_pct"]))
    print("finished  : %s; reproduce: %s" % (time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                               shlex.join([a.python, os.path.relpath(__file__)] + sys.argv[1:])))
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(results, f, indent=1)
        os.replace(a.json + ".tmp", a.json)


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        pass
    return "%s, %d cores online" % (model, os.cpu_count() or 0)


if __name__ == "__main__":
    main()
