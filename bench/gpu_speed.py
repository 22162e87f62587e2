#!/usr/bin/env python3
"""The GPU speed check (issue 11): gan in each precision against PyTorch in the matching set-up, on
the same GPU, in alternating rounds, ending with one markdown table.

What runs. For each CONFIG:BATCH (default dcgan_celeba64 at 64 and 128, dcgan_fmnist32 at 128) and
each mode (default fp32, tf32, bf16), every round runs, each in its own process:
  - gan: `gan bench train CONFIG train.batch_size=B train.precision=MODE train.deterministic=false
    --iterations N --warmup W --rounds 1` (deterministic off, as PyTorch's cudnn.benchmark is);
  - PyTorch: bench/compare_pytorch.py's worker in the same mode (fp32: TF32 off, NCHW; tf32: TF32 on,
    channels_last; bf16: autocast bf16, channels_last, BCEWithLogitsLoss instead of Sigmoid +
    BCELoss; cudnn.benchmark on in all), N iterations after W warm-up, then, in the same process
    and on freshly built models, the same step captured whole in a CUDA graph (Adam with
    capturable=True, noise drawn inside the graph) and replayed N times after W: the stretch anchor;
  - and for fp32 also gan with train.deterministic=true (bit-reproducible, gan's default); for tf32
    also gan with its tensors between layers kept FP32 NCHW (GAN_CUDA_STORAGE=never: each convolution
    pass timed in NCHW and in NHWC on copies instead of FP32 NHWC edges and NHWC throughout), the
    columns "tf32 NCHW-edge gan ms/it" and "tf32 edge gain" (that run's ms/it over the NHWC-edge
    run's, per round: > 1 when the NHWC edges are faster); for bf16 also
    gan with its tensors between layers kept FP32 NCHW (GAN_CUDA_STORAGE=never: the copies around
    each convolution instead of BF16 NHWC edges, and w copied at each pass instead of once per forward),
    the columns "bf16 FP32-edge gan ms/it" and "bf16 edge gain" (that run's ms/it over the BF16-edge
    run's, per round: > 1 when the BF16 edges are faster); and for bf16 also gan on one stream
    (GAN_CUDA_SIDE_STREAM=never: the weight gradients in line with the input gradients, and G's
    forward after D on the real batch, instead of beside them on a second stream), the columns "bf16 one-stream gan ms/it" and "bf16 side-stream
    gain" (the same ratio: > 1 when the side stream is faster).
gan and PyTorch alternate within each round, so both see the same machine. A speedup is taken per
round (PyTorch ms/it / gan ms/it, > 1 when gan is faster) and its median over the rounds is
reported; the ms/it and img/s shown are medians over the rounds too.

Precisions gan does not have. gan is asked for every mode; where it refuses (exit status non-zero
and a message about train.precision: today's config accepts fp32|tf32 only, and the CPU backend
computes fp32 only), its cells say "not implemented in gan" and its message is quoted under the
table: nothing is estimated. The refusal is read from gan each run, so the cells fill in by
themselves once gan accepts bf16. PyTorch's bf16 row is measured regardless.

Share of the floor. floor_ms = useful GFLOP of one iteration / peak, and the share is floor_ms /
measured ms/it. The useful GFLOP come from gan's own `bench train` output for that config and
batch (its "flops" line: every conv, convt and linear pass of the iteration; the same number as
GFLOP/s x ms/it of its summary line). The peak is the matrix-multiply rate gan measures in the
same run and the same precision (its "peak" line: on CUDA its cuBLAS gemm 8192^3 in that
precision, the best over this check's rounds), so gan's share of the floor is its summary line's
"% of sgemm peak" taken against the run's best peak. Where gan measured no peak for a precision
(it refused that precision), there is no floor to share; the notes give the issue's nominal floor
for the size instead (at batch 64 and 145.6 useful GFLOP: fp32 2.8 ms at 51.5 TFLOP/s, tf32 0.3 ms,
bf16 0.15 ms, scaled by the useful GFLOP) and PyTorch's share of it, marked as nominal.

Time. About 3.5 minutes on an H100/H200 with the defaults (3 rounds, 100 iterations after 20
warm-up per measurement, each process paying its own start-up: importing torch, the CUDA context,
cuDNN's algorithm search). --budget-seconds (default 210) guards that: once the first round has
run, the rounds still to come are cut to those that fit in what is left of the budget at the
first round's pace (never below one round in all), and the run says so; a run killed by SIGTERM
still prints the table of the rounds it finished.

    python3 bench/gpu_speed.py --gan build-gpu/gan                      # the check, ~3.5 min
    python3 bench/gpu_speed.py --gan build-gpu/gan --configs dcgan_celeba64:128 --modes bf16
    /usr/bin/python3 bench/gpu_speed.py --device cpu --gan build/gan --configs dcgan_fmnist32:4 \\
        --iterations 2 --warmup 1 --rounds 1        # the CPU smoke test's run (tests/script_gpu_speed.sh)

On --device cpu only gan and PyTorch in fp32 can run: PyTorch's tf32, bf16 and CUDA-graph cells say
"skipped: needs CUDA", gan's say what gan says. Exit status: 0 when every measurement that should
run ran, 1 when one failed (or the run was interrupted), 2 on bad arguments.
"""
import argparse
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_pytorch  # noqa: E402  (one copy of the config reader, the model builder and the worker)

DEFAULT_CONFIGS = "dcgan_celeba64:64,dcgan_celeba64:128,dcgan_fmnist32:128"
MODES = compare_pytorch.MODES
NOT_IMPLEMENTED = "not implemented in gan"
NEEDS_CUDA = "skipped: needs CUDA"
# The floors at dcgan_celeba64 batch 64 (145.6 useful GFLOP): the rates they imply.
NOMINAL_TFLOPS = {"fp32": 51.5, "tf32": 145.6 / 0.3, "bf16": 145.6 / 0.15}
FLOPS_LINE = re.compile(r"^flops\s+: ([\d.]+) GFLOP")
PEAK_LINE = re.compile(r"^peak\s+: ([\d.]+) GFLOP/s, the best of \d+ measurements of (.*) interleaved")
DEVICE_LINE = re.compile(r"^(gpu|cpu)\s+: (.*)$")
PARAMS_LINE = re.compile(r"model\s+: G (\d+) parameters, D (\d+) parameters")
GRAPH_LINE = re.compile(r"^graph\s+: the iteration captured once and replayed, (\d+) nodes per replay: (\d+) kernels")


class Interrupted(Exception):
    pass


def on_sigterm(signum, frame):
    raise Interrupted("SIGTERM")


# ---- one measurement each -------------------------------------------------------------------
def run_process(cmd, timeout, env=None):
    """(status, stdout, stderr); status None on timeout. The child is killed if we are interrupted.
    `env`: variables added to ours."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, **env) if env else None)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, out, err


def last_line(*texts):
    for text in texts:
        lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
        if lines:
            return lines[-1]
    return "(no output)"


def gan_measure(a, config, batch, d_steps, precision, deterministic, env=None):
    """One `gan bench train`: {"ms", "img_s", ...}, {"refused": message} or {"failed": message}."""
    cmd = [a.gan, "bench", "train", config, "train.batch_size=%d" % batch, "train.precision=%s" % precision,
           "train.deterministic=%s" % ("true" if deterministic else "false"), "--device", a.device,
           "--iterations", str(a.iterations), "--warmup", str(a.warmup), "--rounds", "1"]
    status, out, err = run_process(cmd, a.process_timeout, env)
    shown = " ".join(["%s=%s" % kv for kv in sorted((env or {}).items())] + [shlex.join(cmd)])
    if status is None:
        return {"failed": "timed out after %d s" % a.process_timeout, "cmd": shown}
    if status != 0:
        message = last_line(err, out)
        if "train.precision" in message:  # the config's or the backend's refusal of this precision
            return {"refused": message, "cmd": shown}
        return {"failed": "exit %d: %s" % (status, message), "cmd": shown}
    lines = out.splitlines()
    summary = [m for m in map(compare_pytorch.SUMMARY.match, lines) if m]
    flops = [m for m in map(FLOPS_LINE.match, lines) if m]
    peak = [m for m in map(PEAK_LINE.match, lines) if m]
    params = PARAMS_LINE.search(out)
    if len(summary) != 1 or not flops or not peak or not params:
        return {"failed": "no summary, flops, peak or model line in its output: %s" % last_line(out), "cmd": shown}
    ms_printed, img_s, gflops, pct = (float(summary[0].group(i)) for i in (3, 4, 5, 6))
    device = [m.group(2) for m in map(DEVICE_LINE.match, lines) if m]
    graph = [m for m in map(GRAPH_LINE.match, lines) if m]
    return {
        # the captured iteration's nodes and kernels (each one launch of a replay), where captured
        "graph_nodes": [int(graph[0].group(1)), int(graph[0].group(2))] if graph else None,
        # ms/it from img/s, which gan prints with more significant digits than ms/it (%.1f)
        "ms": batch * d_steps * 1e3 / img_s if img_s > 0 else ms_printed,
        "img_s": img_s, "gflops": gflops, "pct": pct, "gflop": float(flops[0].group(1)),
        "peak_gflops": float(peak[0].group(1)), "peak_what": peak[0].group(2),
        "params": [int(params.group(1)), int(params.group(2))], "device": device[-1] if device else "",
        "cmd": shown,
    }


def torch_measure(a, config, batch, mode, graph):
    """One PyTorch worker: {"ms", "graph_ms"?, "graph_error"?, ...}, {"skipped": why} or {"failed": why}."""
    if a.device != "cuda" and mode != "fp32":
        return {"skipped": NEEDS_CUDA}
    cmd = [a.python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare_pytorch.py"), "--worker",
           "--config", config, "--batch", str(batch), "--device", a.device, "--threads", str(a.torch_threads),
           "--mode", mode, "--iterations", str(a.iterations), "--warmup", str(a.warmup)]
    if graph:
        cmd.append("--graph")
    status, out, err = run_process(cmd, a.process_timeout)
    shown = shlex.join(cmd)
    if status is None:
        return {"failed": "timed out after %d s" % a.process_timeout, "cmd": shown}
    if status != 0:
        return {"failed": "exit %d: %s" % (status, last_line(err, out)), "cmd": shown}
    try:
        r = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"failed": "no JSON line in its output: %s" % last_line(out, err), "cmd": shown}
    result = {"ms": r["ms_per_it"], "params": [r["params_g"], r["params_d"]], "settings": r.get("settings", ""),
              "torch": r.get("torch", "?"), "gpu": r.get("gpu", ""), "losses": r.get("losses"), "cmd": shown}
    if "graph_ms_per_it" in r:
        result["graph_ms"] = r["graph_ms_per_it"]
        result["graph_settings"] = r.get("graph_settings", "")
    if "graph_error" in r:
        result["graph_error"] = r["graph_error"]
    return result


# ---- the rounds ---------------------------------------------------------------------------------
class Check:
    def __init__(self, a):
        self.a = a
        self.items = []  # (config, batch, d_steps)
        for item in a.configs.split(","):
            config, _, batch = item.partition(":")
            cfg = compare_pytorch.read_config(config)
            self.items.append((config, int(batch) if batch else cfg["batch_size"], cfg["d_steps"]))
        # rounds[i][(config, batch)] = {"gan": {variant: result}, "torch": {mode: result}}
        self.rounds = []
        self.finished = 0  # rounds run to the end (an interrupted one is dropped)
        self.refused = {}  # (config, batch, variant) -> gan's result, asked once
        self.graph_off = {}  # (config, batch, mode) -> the graph's error in an earlier round
        self.problems = []  # what failed, for the notes and the exit status

    def variants(self):
        """gan's variants: (key, precision, deterministic, environment), in the order they run."""
        out = []
        for mode in self.a.modes:
            out.append((mode, mode, False, None))
            if mode == "fp32":
                out.append(("fp32-det", "fp32", True, None))
            if mode == "tf32":
                out.append(("tf32-f32edges", "tf32", False, {"GAN_CUDA_STORAGE": "never"}))
            if mode == "bf16":
                out.append(("bf16-f32edges", "bf16", False, {"GAN_CUDA_STORAGE": "never"}))
                out.append(("bf16-onestream", "bf16", False, {"GAN_CUDA_SIDE_STREAM": "never"}))
        return out

    def one_round(self, number):
        a = self.a
        this = {}
        self.rounds.append(this)
        for config, batch, d_steps in self.items:
            cell = this[(config, batch)] = {"gan": {}, "torch": {}}
            for mode in a.modes:
                for key, precision, deterministic, env in [v for v in self.variants() if v[1] == mode]:
                    if (config, batch, key) in self.refused:
                        cell["gan"][key] = self.refused[(config, batch, key)]
                        continue
                    r = gan_measure(a, config, batch, d_steps, precision, deterministic, env)
                    cell["gan"][key] = r
                    if "refused" in r:
                        self.refused[(config, batch, key)] = r
                    if "failed" in r:
                        self.problems.append("round %d, %s batch %d, gan %s: %s (%s)" % (
                            number, config, batch, key, r["failed"], r["cmd"]))
                    say(number, config, batch, "gan %s" % key, r)
                    if key == mode:  # PyTorch right after gan's non-deterministic run of the mode
                        graph = a.graph and a.device == "cuda" and (config, batch, mode) not in self.graph_off
                        t = torch_measure(a, config, batch, mode, graph)
                        cell["torch"][mode] = t
                        if "failed" in t:
                            self.problems.append("round %d, %s batch %d, PyTorch %s: %s (%s)" % (
                                number, config, batch, mode, t["failed"], t["cmd"]))
                        if "graph_error" in t:
                            self.graph_off[(config, batch, mode)] = t["graph_error"]
                            self.problems.append("round %d, %s batch %d, PyTorch %s CUDA graph: %s" % (
                                number, config, batch, mode, t["graph_error"]))
                        say(number, config, batch, "PyTorch %s" % mode, t)
                self.check_params(number, config, batch, cell)
        self.finished += 1

    def check_params(self, number, config, batch, cell):
        """The same architecture on both sides, or the comparison means nothing."""
        ours = [r["params"] for r in cell["gan"].values() if "params" in r]
        theirs = [r["params"] for r in cell["torch"].values() if "params" in r]
        if ours and theirs and ours[0] != theirs[0]:
            self.problems.append("round %d, %s batch %d: PyTorch's model has %d + %d parameters, gan's %d + %d: "
                                 "not the same architecture" % (number, config, batch, *theirs[0], *ours[0]))


def say(number, config, batch, who, r):
    if "ms" in r:
        extra = ""
        if "img_s" in r:
            extra = ", %.0f img/s, %.1f%% of its %s peak" % (r["img_s"], r["pct"], r["peak_what"])
        if "graph_ms" in r:
            extra += "; CUDA graph %s ms/it" % fmt_ms(r["graph_ms"])
        if "graph_error" in r:
            extra += "; CUDA graph FAILED: %s" % r["graph_error"]
        text = "%s ms/it%s" % (fmt_ms(r["ms"]), extra)
    else:
        text = r.get("refused") and "refused: %s" % r["refused"] or r.get("skipped") or "FAILED: %s" % r.get("failed")
    print("round %d  %s batch %d  %-18s %s" % (number, config, batch, who, text), flush=True)


# ---- the table ----------------------------------------------------------------------------------
def fmt_ms(ms):
    return "%.3f" % ms if ms < 1 else "%.2f" % ms


def median(xs):
    return statistics.median(xs) if xs else None


def summarise(check):
    """Per (config, batch): medians and median ratios over the rounds, the cells' texts, the notes."""
    a = check.a
    rows, notes = [], []
    for config, batch, _ in check.items:
        per_round = [r[(config, batch)] for r in check.rounds if (config, batch) in r]
        gan = lambda key: [c["gan"][key] for c in per_round if key in c["gan"]]  # noqa: E731
        torch_ = lambda mode: [c["torch"][mode] for c in per_round if mode in c["torch"]]  # noqa: E731
        cells = ["%s, %d" % (config, batch)]
        gflop = median([r["gflop"] for c in per_round for r in c["gan"].values() if "gflop" in r])
        for mode in a.modes:
            keys = [mode] + (["fp32-det"] if mode == "fp32" else []) + \
                (["tf32-f32edges"] if mode == "tf32" else []) + \
                (["bf16-f32edges", "bf16-onestream"] if mode == "bf16" else [])
            for key in keys:
                ours = gan(key)
                theirs = torch_(mode)
                refused = next((r["refused"] for r in ours if "refused" in r), None)
                ok_ours = [r for r in ours if "ms" in r]
                ours_ms = median([r["ms"] for r in ok_ours])
                theirs_ms = median([t["ms"] for t in theirs if "ms" in t])
                graph_ms = median([t["graph_ms"] for t in theirs if "graph_ms" in t])
                ratios = [c["torch"][mode]["ms"] / c["gan"][key]["ms"] for c in per_round
                          if "ms" in c["gan"].get(key, {}) and "ms" in c["torch"].get(mode, {})]
                ratio = median(ratios)
                graph_ratio = median([c["torch"][mode]["graph_ms"] / c["gan"][key]["ms"] for c in per_round
                                      if "ms" in c["gan"].get(key, {}) and "graph_ms" in c["torch"].get(mode, {})])
                peak = max([r["peak_gflops"] for r in ok_ours] or [0]) or None

                def ours_text(value, text):
                    if refused:
                        return NOT_IMPLEMENTED
                    if value is None:
                        return "failed" if any("failed" in r for r in ours) else "n/a"
                    return text(value)

                def theirs_text(value, text, graph=False):
                    if any("skipped" in t for t in theirs):
                        return NEEDS_CUDA
                    if graph and not a.graph:
                        return "not run (--no-graph)"
                    if graph and a.device != "cuda":
                        return NEEDS_CUDA
                    if value is None:
                        return "failed"
                    return text(value)

                def ratio_text(value, graph=False):
                    if refused:
                        return NOT_IMPLEMENTED
                    if any("skipped" in t for t in theirs) or (graph and (not a.graph or a.device != "cuda")):
                        return "n/a"
                    return "failed" if value is None else "%.2fx" % value

                if key == "fp32-det":  # two columns: gan's deterministic fp32 and its speedup over PyTorch fp32
                    cells += [ours_text(ours_ms, fmt_ms), ratio_text(ratio)]
                    continue
                if key in ("tf32-f32edges", "bf16-f32edges", "bf16-onestream"):
                    # two columns: gan tf32 or bf16 with FP32 NCHW edges (or on one stream), and what
                    # the NHWC edges (the side stream) gain
                    gains = [c["gan"][key]["ms"] / c["gan"][mode]["ms"] for c in per_round
                             if "ms" in c["gan"].get(key, {}) and "ms" in c["gan"].get(mode, {})]
                    cells += [ours_text(ours_ms, fmt_ms),
                              ours_text(median(gains), lambda v: "%.2fx" % v) if gains or refused else "n/a"]
                    continue
                floor_ms = gflop / peak * 1e3 if gflop and peak else None
                cells += [ours_text(ours_ms, fmt_ms), theirs_text(theirs_ms, fmt_ms), ratio_text(ratio),
                          theirs_text(graph_ms, fmt_ms, graph=True), ratio_text(graph_ratio, graph=True),
                          ours_text(median([r["img_s"] for r in ok_ours]), lambda v: "%.0f" % v),
                          ours_text(floor_ms / ours_ms if floor_ms and ours_ms else None,
                                    lambda v: "%.1f%%" % (100 * v))]
                # the notes: the floor in this mode, and PyTorch's share of it
                if gflop:
                    if floor_ms:
                        how = "%.3f ms = %.1f useful GFLOP / %.1f TFLOP/s, gan's best %s" % (
                            floor_ms, gflop, peak * 1e-3, ok_ours[0]["peak_what"])
                    elif a.device == "cuda":
                        floor_ms = gflop / NOMINAL_TFLOPS[mode]  # GFLOP / (TFLOP/s) = ms
                        how = "%.3f ms NOMINAL = %.1f useful GFLOP / %.1f TFLOP/s, the issue's rate (no peak measured " \
                              "in %s: %s)" % (floor_ms, gflop, NOMINAL_TFLOPS[mode], mode,
                                             "gan refused it" if refused else "no gan result")
                    else:
                        floor_ms = None
                if gflop and floor_ms:
                    share = []
                    if ours_ms and not refused:
                        share.append("gan %.1f%%" % (100 * floor_ms / ours_ms))
                    if theirs_ms:
                        share.append("PyTorch %.1f%%" % (100 * floor_ms / theirs_ms))
                    if graph_ms:
                        share.append("PyTorch graph %.1f%%" % (100 * floor_ms / graph_ms))
                    notes.append("%s batch %d, %s floor: %s%s" % (config, batch, mode, how,
                                                                  "; share: " + ", ".join(share) if share else ""))
                if len(ratios) > 1:
                    notes.append("%s batch %d, %s: speedup %.2f-%.2fx over %d rounds" % (
                        config, batch, mode, min(ratios), max(ratios), len(ratios)))
                nodes = next((r["graph_nodes"] for r in ok_ours if r.get("graph_nodes")), None)
                if nodes:
                    notes.append("%s batch %d, %s: gan's captured iteration has %d nodes, %d of them kernels "
                                 "(each one launch per replay)" % (config, batch, key, nodes[0], nodes[1]))
        rows.append(cells)
    header = ["config, batch"]
    for mode in a.modes:
        header += ["%s gan ms/it" % mode, "%s PyTorch ms/it" % mode, "%s speedup" % mode,
                   "%s PyTorch graph ms/it" % mode, "%s speedup vs graph" % mode, "%s gan img/s" % mode,
                   "%s gan %% of floor" % mode]
        if mode == "fp32":
            header += ["fp32 deterministic gan ms/it", "fp32 deterministic speedup"]
        if mode == "tf32":
            header += ["tf32 NCHW-edge gan ms/it", "tf32 edge gain"]
        if mode == "bf16":
            header += ["bf16 FP32-edge gan ms/it", "bf16 edge gain", "bf16 one-stream gan ms/it",
                       "bf16 side-stream gain"]
    return header, rows, notes


def report(check, started, reproduce, rounds_note, interrupted):
    a = check.a
    header, rows, notes = summarise(check)
    lines = ["", "## gan vs PyTorch: speed check (%s, %s)" % (a.device, time.strftime("%Y-%m-%d %H:%M %Z", started)), ""]
    devices = sorted({r["device"] for rd in check.rounds for c in rd.values() for r in c["gan"].values()
                      if r.get("device")})
    torches = sorted({"torch %s%s" % (t["torch"], " on " + t["gpu"] if t.get("gpu") else "")
                      for rd in check.rounds for c in rd.values() for t in c["torch"].values() if "torch" in t})
    lines.append("gan: %s; %s" % (a.gan, "; ".join(devices) or "no gan result"))
    lines.append("PyTorch: %s" % ("; ".join(torches) or "no PyTorch result"))
    lines.append("%d round%s (%s), %d iterations after %d warm-up per measurement, each its own process" % (
        len(check.rounds), "" if len(check.rounds) == 1 else "s", rounds_note, a.iterations, a.warmup))
    lines.append("")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for cells in rows:
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("speedup = PyTorch ms/it / gan ms/it, per round, median over the rounds (> 1: gan is faster); "
                 "ms/it and img/s are medians; gan runs train.deterministic=false except in the fp32 "
                 "deterministic columns (whose speedup is over PyTorch fp32); tf32 edge gain = gan tf32 ms/it with "
                 "its tensors between layers FP32 NCHW and each pass's layout timed (GAN_CUDA_STORAGE=never) / "
                 "with them FP32 NHWC, per round, median (> 1: the NHWC edges are faster); "
                 "bf16 edge gain = gan bf16 ms/it with "
                 "its tensors between layers FP32 NCHW and w copied at each pass (GAN_CUDA_STORAGE=never) / "
                 "with them BF16 NHWC and w copied once per forward, per "
                 "round, median (> 1: the BF16 edges are faster); bf16 side-stream gain = gan bf16 ms/it on one "
                 "stream (GAN_CUDA_SIDE_STREAM=never) / with the weight gradients on a side stream, per round, "
                 "median (> 1: the side stream is faster); share of the floor = floor ms / "
                 "gan ms/it, the floor being useful GFLOP / the peak gan measured in that precision.")
    settings = {}
    for rd in check.rounds:
        for c in rd.values():
            for mode, t in c["torch"].items():
                if "settings" in t:
                    settings.setdefault(mode, t["settings"] + ("; graph: " + t["graph_settings"]
                                                               if t.get("graph_settings") else ""))
    for mode in a.modes:
        if mode in settings:
            lines.append("- PyTorch %s: %s" % (mode, settings[mode]))
    said = set()
    for (config, batch, key), r in sorted(check.refused.items()):
        if r["refused"] not in said:
            said.add(r["refused"])
            lines.append("- gan %s: %s: \"%s\" (%s)" % (key, NOT_IMPLEMENTED, r["refused"], r["cmd"]))
    if a.device != "cuda":
        lines.append("- PyTorch tf32, bf16 and the CUDA graph: %s (TF32 and BF16 tensor-core math and CUDA graphs "
                     "are GPU set-ups; --device %s runs PyTorch fp32 only)" % (NEEDS_CUDA, a.device))
    for n in notes:
        lines.append("- " + n)
    for p in check.problems:
        lines.append("- FAILED: " + p)
    if interrupted:
        lines.append("- INTERRUPTED (%s) after %d finished round%s: the table holds those" % (
            interrupted, len(check.rounds), "" if len(check.rounds) == 1 else "s"))
    lines.append("")
    lines.append("reproduce: %s" % reproduce)
    return lines


# ---- main ---------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gan", default=None, help="the gan binary (default: build/gan, else build*/gan)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="CONFIG:BATCH,... (default %(default)s)")
    ap.add_argument("--modes", default=",".join(MODES), help="of fp32,tf32,bf16 (default all three)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=100, help="timed iterations per measurement (default 100)")
    ap.add_argument("--warmup", type=int, default=20, help="warm-up iterations per measurement (default 20)")
    ap.add_argument("--budget-seconds", type=float, default=210,
                    help="cut the rounds after the first to what fits in this many seconds (default 210)")
    ap.add_argument("--process-timeout", type=int, default=120, help="seconds one measurement may take (default 120)")
    ap.add_argument("--no-graph", dest="graph", action="store_false", help="skip PyTorch's CUDA-graph variant")
    ap.add_argument("--python", default=None, help="python for the PyTorch worker (default: this one)")
    ap.add_argument("--torch-threads", type=int, default=1, help="PyTorch's threads on --device cpu (default 1)")
    ap.add_argument("--json", default=None, help="also write every measurement to this file")
    ap.add_argument("--table-out", default=None, help="also write the table and its notes (markdown) to this file")
    a = ap.parse_args()
    a.modes = [m for m in a.modes.split(",") if m]
    bad = [m for m in a.modes if m not in MODES]
    if bad or not a.modes:
        ap.error("--modes takes some of %s, got %s" % (",".join(MODES), ",".join(bad) or "none"))
    if a.rounds < 1 or a.iterations < 1 or a.warmup < 0:
        ap.error("--rounds and --iterations want at least 1, --warmup at least 0")
    a.gan = os.path.abspath(a.gan or compare_pytorch.find_gan())
    a.python = a.python or sys.executable
    started = time.localtime()
    t0 = time.monotonic()
    reproduce = shlex.join([os.path.basename(a.python), os.path.relpath(os.path.abspath(__file__))] + sys.argv[1:])
    check = Check(a)
    print("gpu_speed: %s x %s, up to %d rounds of %d iterations after %d warm-up, budget %.0f s; gan %s" % (
        a.configs, ",".join(a.modes), a.rounds, a.iterations, a.warmup, a.budget_seconds, a.gan), flush=True)
    signal.signal(signal.SIGTERM, on_sigterm)
    planned, interrupted = a.rounds, None
    try:
        for number in range(1, a.rounds + 1):
            if number > planned:
                break
            start = time.monotonic()
            check.one_round(number)
            took = time.monotonic() - start
            elapsed = time.monotonic() - t0
            print("round %d took %.1f s (%.1f s so far)" % (number, took, elapsed), flush=True)
            if number == 1 and a.rounds > 1:
                fit = 1 + int(max(0.0, a.budget_seconds - elapsed) // took) if took > 0 else a.rounds
                if fit < a.rounds:
                    planned = max(1, fit)
                    print("budget: round 1 took %.1f s, so %d round%s in all fit in --budget-seconds %.0f (asked %d)" % (
                        took, planned, "" if planned == 1 else "s", a.budget_seconds, a.rounds), flush=True)
    except (Interrupted, KeyboardInterrupt) as e:
        interrupted = str(e) or type(e).__name__
        del check.rounds[check.finished:]  # a round cut short would weigh its configs unevenly
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    asked = a.rounds
    rounds_note = "%d asked%s, %.0f s" % (asked, "; cut by --budget-seconds" if planned < asked else "",
                                          time.monotonic() - t0)
    lines = report(check, started, reproduce, rounds_note, interrupted)
    print("\n".join(lines), flush=True)
    if a.table_out:
        with open(a.table_out, "w") as f:
            f.write("\n".join(lines).lstrip("\n") + "\n")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump({"args": vars(a), "rounds": [{"%s:%d" % k: v for k, v in r.items()} for r in check.rounds],
                       "problems": check.problems, "interrupted": interrupted}, f, indent=1)
        os.replace(a.json + ".tmp", a.json)
    sys.exit(1 if check.problems or interrupted else 0)


if __name__ == "__main__":
    main()
