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
cudnn.benchmark on, PyTorch in --mode fp32 (TF32 off, NCHW; the default), tf32 (TF32 on,
channels_last; --tf32 says the same) or bf16 (autocast bf16, channels_last, BCEWithLogitsLoss),
and gan with train.precision=MODE train.deterministic=false unless fp32 (see the worker's
comment below). bench/gpu_speed.py runs every mode, gan's deterministic fp32 and PyTorch's
CUDA-graph variant (the worker's --graph) for the issue's speed check.

    /usr/bin/python3 bench/compare_pytorch.py                       # the four configs, cpu
    /usr/bin/python3 bench/compare_pytorch.py --configs dcgan_fmnist32:128 --rounds 5
    python3 bench/compare_pytorch.py --device cuda --gan build-gpu/gan
    python3 bench/compare_pytorch.py --worker --config dcgan_fmnist32 --batch 128 --threads 1
    python3 bench/compare_pytorch.py --worker --config dcgan_celeba64 --batch 64 --device cuda \
        --mode bf16 --graph --iterations 100 --warmup 20       # one JSON line: eager and graph ms/it
"""
import argparse
import configparser
import contextlib
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
# Modes of the PyTorch side (the "matching set-up" for each of gan's train.precision):
#   fp32: TF32 off for cuDNN and cuBLAS, NCHW, BCELoss on D's Sigmoid (the tutorial as written);
#   tf32: TF32 on, the models and the real batch in channels_last (NHWC), otherwise the same;
#   bf16: torch.autocast("cuda", bfloat16) around each forward and its loss, TF32 on for whatever
#         autocast leaves in FP32, channels_last, D's final Sigmoid dropped and BCEWithLogitsLoss
#         used (BCELoss refuses autocast), otherwise the same.
# cudnn.benchmark is on in every mode. --graph also times the same step captured whole (D real,
# D fake, D's Adam, G through D, G's Adam, the noise drawn inside) in a CUDA graph and replayed.
MODES = ("fp32", "tf32", "bf16")


class WorkerRefusal(Exception):
    """A set-up this worker cannot run (mode, device, model); main() prints it and exits 2."""


def has_attribute(obj, name):
    """hasattr that also survives torch's backend modules, whose __getattr__ raises AssertionError
    (torch 1.13) rather than AttributeError, and any getter that raises."""
    try:
        getattr(obj, name)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False


def set_tf32(torch, on):
    """TF32 for cuDNN convolutions and cuBLAS matmuls, on or off, through the allow_tf32 flags (what
    PyTorch 2.11 ran here before; from 2.9 on it warns that they are deprecated in favour of the
    per-backend fp32_precision settings, which it raises on if mixed with them, so only the old
    flags are written). Returns what was set and, where the new settings exist, what they read."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    said = "allow_tf32=%s (cuda.matmul, cudnn)" % on
    readings = []
    for name, obj in (("cudnn.conv", getattr(torch.backends.cudnn, "conv", None)),
                      ("cuda.matmul", torch.backends.cuda.matmul)):
        if obj is not None and has_attribute(obj, "fp32_precision"):
            readings.append("%s %s" % (name, getattr(obj, "fp32_precision")))
    return said + (" -> fp32_precision: " + ", ".join(readings) if readings else "")


def make_models(torch, nn, cfg, dev, mode, capturable=False):
    """G, D, their Adams, the criterion and the autocast context factory of one mode, from the
    config, seeded the same way every time (so the eager and the graph variant start equal)."""
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
    if mode == "bf16":  # BCELoss refuses autocast: D returns logits, the loss applies the sigmoid
        if not len(net_d) or not isinstance(net_d[-1], nn.Sigmoid):
            raise WorkerRefusal("--mode bf16: %s's discriminator does not end with sigmoid, so there is no "
                                "Sigmoid to fold into BCEWithLogitsLoss" % cfg["name"])
        net_d = net_d[:-1]
        criterion = nn.BCEWithLogitsLoss()
    else:
        criterion = nn.BCELoss()
    net_g, net_d = net_g.to(dev), net_d.to(dev)
    if mode != "fp32":  # NHWC, what tensor cores want; only 4-D weights change
        net_g = net_g.to(memory_format=torch.channels_last)
        net_d = net_d.to(memory_format=torch.channels_last)
    extra = {"capturable": True} if capturable else {}
    opt_d = torch.optim.Adam(net_d.parameters(), lr=cfg["lr_d"], betas=(cfg["beta1_d"], cfg["beta2_d"]), **extra)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=cfg["lr_g"], betas=(cfg["beta1_g"], cfg["beta2_g"]), **extra)
    if mode == "bf16":
        # Inside a CUDA graph capture the autocast cast cache is turned off, as PyTorch's graph
        # notes ask; eagerly it stays at its default (on), PyTorch's fastest.
        def autocast():
            return torch.autocast(dev.type, dtype=torch.bfloat16, cache_enabled=not capturable)
    else:
        def autocast():
            return contextlib.nullcontext()
    return {"g": net_g, "d": net_d, "opt_g": opt_g, "opt_d": opt_d, "criterion": criterion,
            "autocast": autocast, "z_flat": z_flat, "image": image}


def make_step(torch, cfg, models, batch, dev, mode):
    """The tutorial's iteration (k D steps, then one G step on the last fake) on a fixed real batch,
    as a function returning the three losses as device tensors (no host synchronisation inside, so
    that the same function can be captured in a CUDA graph)."""
    m = models
    net_g, net_d, criterion, autocast = m["g"], m["d"], m["criterion"], m["autocast"]
    real = torch.rand(batch, *m["image"], device=dev) * 2 - 1  # the static input buffer
    if mode != "fp32":
        real = real.contiguous(memory_format=torch.channels_last)
    z_shape = (batch, cfg["nz"]) if m["z_flat"] else (batch, cfg["nz"], 1, 1)
    draw = torch.rand if cfg["noise"] == "uniform" else torch.randn
    label = torch.empty(batch, device=dev)

    def step():
        for _ in range(cfg["d_steps"]):
            net_d.zero_grad(set_to_none=True)
            with autocast():
                err_real = criterion(net_d(real).view(-1), label.fill_(1.0))
            err_real.backward()
            with autocast():
                fake = net_g(draw(*z_shape, device=dev))
                err_fake = criterion(net_d(fake.detach()).view(-1), label.fill_(0.0))
            err_fake.backward()
            m["opt_d"].step()
        net_g.zero_grad(set_to_none=True)
        with autocast():
            err_g = criterion(net_d(fake).view(-1), label.fill_(1.0))
        err_g.backward()
        m["opt_g"].step()
        return err_real.detach(), err_fake.detach(), err_g.detach()

    return step


def time_eager(step, warmup, iterations, sync):
    for _ in range(warmup):  # cudnn.benchmark tries its algorithms on the first
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(iterations):
        losses = step()
    sync()
    return (time.perf_counter() - t0) * 1e3 / iterations, [float(x) for x in losses]


def time_graph(cuda, step, nets, warmup, iterations):
    """PyTorch's whole-network capture (cuda is torch.cuda): warm up on a side stream (cuDNN's
    algorithm search, Adam's lazily made state, the allocator), set the gradients of `nets` to None
    so that the captured backward passes make them from the graph's private pool (and nothing is
    freed during capture), capture one step on that same stream, replay. The real batch and the
    label are static buffers; the noise is drawn inside the graph (the default CUDA generator
    advances its offset on every replay)."""
    side = cuda.Stream()
    side.wait_stream(cuda.current_stream())
    with cuda.stream(side):
        for _ in range(3):
            step()
    cuda.current_stream().wait_stream(side)
    for net in nets:
        net.zero_grad(set_to_none=True)
    graph = cuda.CUDAGraph()
    with cuda.graph(graph, stream=side):
        static_losses = step()
    for _ in range(warmup):
        graph.replay()
    cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iterations):
        graph.replay()
    cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3 / iterations, [float(x) for x in static_losses]


class StandInCuda:
    """--graph --cpu-code-path-check, for tests: torch.cuda's stream and graph calls as no-ops, so that
    time_graph's own code runs on a machine without CUDA (the 'capture' runs the step once on the
    CPU, 'replay' does nothing). It proves nothing about capture itself; its times mean nothing."""
    class Stream:
        def wait_stream(self, other):
            pass

    class CUDAGraph:
        def replay(self):
            pass

    def current_stream(self):
        return self.Stream()

    def stream(self, stream):
        return contextlib.nullcontext()

    def graph(self, graph, stream=None):
        return contextlib.nullcontext()

    def synchronize(self):
        pass


def worker(a):
    import torch
    import torch.nn as nn
    cfg = read_config(a.config)
    batch = a.batch or cfg["batch_size"]
    mode, graph = getattr(a, "mode", None) or "fp32", getattr(a, "graph", False)
    stand_in = getattr(a, "cpu_code_path_check", False)
    if mode not in MODES:
        raise WorkerRefusal("--mode must be one of %s, got %r" % ("|".join(MODES), mode))
    if a.device == "cpu" and mode != "fp32" and not stand_in:
        raise WorkerRefusal("--mode %s needs --device cuda: TF32 and BF16 tensor-core math are GPU set-ups "
                            "(--cpu-code-path-check runs the code on the CPU, for tests only)" % mode)
    if a.device == "cpu" and graph and not stand_in:
        raise WorkerRefusal("--graph needs --device cuda: CUDA graphs capture GPU work")
    settings = ["mode %s" % mode]
    if a.device == "cpu":
        torch.set_num_threads(a.threads)
    else:
        torch.backends.cudnn.benchmark = True
        settings.append("cudnn.benchmark=True")
    if a.device != "cpu" or stand_in:
        settings.append(set_tf32(torch, mode != "fp32"))
    settings.append("channels_last" if mode != "fp32" else "NCHW")
    if mode == "bf16":
        settings.append("autocast bf16, BCEWithLogitsLoss")
    else:
        settings.append("BCELoss on Sigmoid")
    dev = torch.device(a.device)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    models = make_models(torch, nn, cfg, dev, mode)
    ms, losses = time_eager(make_step(torch, cfg, models, batch, dev, mode), a.warmup, a.iterations, sync)
    params = lambda m: sum(p.numel() for p in m.parameters())
    out = {"ms_per_it": ms, "losses": losses, "mode": mode, "settings": ", ".join(settings),
           "threads": torch.get_num_threads(), "params_g": params(models["g"]), "params_d": params(models["d"]),
           "torch": torch.__version__}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
    if stand_in:
        out["cpu_code_path_check"] = True
    if graph:
        del models
        try:
            on_gpu = dev.type == "cuda"  # capturable Adam needs CUDA tensors
            graph_models = make_models(torch, nn, cfg, dev, mode, capturable=on_gpu)
            step = make_step(torch, cfg, graph_models, batch, dev, mode)
            out["graph_ms_per_it"], out["graph_losses"] = time_graph(
                torch.cuda if on_gpu else StandInCuda(), step, (graph_models["d"], graph_models["g"]),
                a.warmup, a.iterations)
            out["graph_settings"] = ("whole step in one CUDA graph, Adam(capturable=True)" if on_gpu else
                                     "stand-in for the CUDA graph (--cpu-code-path-check): times mean nothing") + (
                ", autocast cache off" if mode == "bf16" and on_gpu else "")
        except Exception as e:  # noqa: BLE001 - the eager result stands; the driver reports the graph's failure
            out["graph_error"] = "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else "")
    return out


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
    if a.mode != "fp32":
        cmd += ["train.precision=%s" % a.mode, "train.deterministic=false"]
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
    if a.mode != "fp32":
        cmd += ["--mode", a.mode]
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
    ap.add_argument("--mode", default="fp32", choices=MODES, help="cuda: PyTorch's set-up (fp32: TF32 off, NCHW; "
                    "tf32: TF32 on, channels_last; bf16: autocast bf16, channels_last, BCEWithLogitsLoss) and, "
                    "unless fp32, train.precision=MODE train.deterministic=false for gan (default fp32)")
    ap.add_argument("--tf32", dest="mode", action="store_const", const="tf32", help="the same as --mode tf32")
    ap.add_argument("--graph", action="store_true", help=argparse.SUPPRESS)  # worker: also time a CUDA graph
    ap.add_argument("--cpu-code-path-check", action="store_true", help=argparse.SUPPRESS)  # worker, tests only
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.threads = int(a.threads)
        a.iterations = a.iterations or 10
        a.warmup = 2 if a.warmup is None else a.warmup
        try:
            print(json.dumps(worker(a)))
        except WorkerRefusal as e:
            print("compare_pytorch: %s" % e, file=sys.stderr)
            sys.exit(2)
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
