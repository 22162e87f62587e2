#!/usr/bin/env python3
"""Compares two runs of gan train for the data-parallel tests (tests/script_dist_*.sh), with the
FP32 tolerances docs/DESIGN.md "Data parallel" derives. Plain Python (struct, array, json): no numpy.

  dist_compare.py checkpoints A.safetensors B.safetensors --lr LR --steps T
      every tensor of G and D (weights, biases, batch norm parameters and running statistics):
        |a - b| <= 2 lr sum_{t<=T} U_t  (U_t: the most one Adam update can move a weight, in
                                        units of lr, for beta1 = 0.5, beta2 = 0.999; see below)
      per network, the root mean square of a - b over all of them <= 0.1 lr;
      the Adam moments m and v, per network: rms(a - b) / rms(a) <= 0.05;
      num_batches_tracked equal.
  dist_compare.py metrics A/metrics.jsonl B/metrics.jsonl
      loss_d, loss_g, d_x, d_g_z1, d_g_z2 of every iteration logged by both:
        iteration 1's loss_d, d_x and d_g_z1 (before any Adam step): relative 1e-6;
        everything else: relative 1e-3.
Prints the measured largest differences beside the tolerances; exits 1 when one is exceeded.

U_t: Adam's update at step t is lr m^_t / (sqrt(v^_t) + eps) with m^_t = sum_k a_k g_k and
v^_t = sum_k b_k g_k^2 (the bias-corrected averages); by Cauchy-Schwarz |m^_t| / sqrt(v^_t) <=
sqrt(sum_k a_k^2 / b_k) = U_t, whatever the gradients are: 1, 1.054, 1.133, 1.229 for t = 1..4.
Two runs whose gradients differ only by rounding can still part by 2 lr U_t at a step, on a weight
whose gradient is at the rounding level (its sign then decides the update) or whose pre-activation
sits at a ReLU's kink; that is the per-weight bound. Such weights are few: the bulk moves together,
which the root-mean-square bound checks (a run with its statistics or gradients wrong moves every
weight by about an Adam step: rms 1 lr).
"""
import array
import json
import math
import struct
import sys


def load(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        values = array.array({"F32": "f", "I64": "q"}[info["dtype"]])
        values.frombytes(body[start:end])
        tensors[name] = values
    return tensors


def adam_bound(steps, beta1=0.5, beta2=0.999):
    total = 0.0
    for t in range(1, steps + 1):
        a = [(1 - beta1) * beta1 ** (t - k) / (1 - beta1 ** t) for k in range(1, t + 1)]
        b = [(1 - beta2) * beta2 ** (t - k) / (1 - beta2 ** t) for k in range(1, t + 1)]
        total += math.sqrt(sum(x * x / y for x, y in zip(a, b)))
    return 2.0 * total


def checkpoints(path_a, path_b, lr, steps):
    a, b = load(path_a), load(path_b)
    failures = []
    if sorted(a) != sorted(b):
        return ["the checkpoints hold different tensors"]
    bound = adam_bound(steps) * lr
    rms_limit = 0.1 * lr
    for net in "GD":
        sq, count, worst, worst_name = 0.0, 0, 0.0, ""
        for name in sorted(a):
            if not name.startswith(net + ".") or ".adam." in name:
                continue
            x, y = a[name], b[name]
            if name.endswith("num_batches_tracked"):
                if list(x) != list(y):
                    failures.append("%s: %s and %s" % (name, list(x), list(y)))
                continue
            diffs = [abs(p - q) for p, q in zip(x, y)]
            if any(math.isnan(d) for d in diffs):
                failures.append("%s: NaN" % name)
                continue
            top = max(diffs, default=0.0)
            if top > worst:
                worst, worst_name = top, name
            sq += sum(d * d for d in diffs)
            count += len(diffs)
        rms = math.sqrt(sq / max(count, 1))
        print("%s: largest |a - b| %.3g (%s) = %.3f lr, bound %.3f lr; rms %.3g = %.4f lr, bound 0.1 lr"
              % (net, worst, worst_name, worst / lr, bound / lr, rms, rms / lr))
        if worst > bound:
            failures.append("%s: %s differs by %.3g > %.3g" % (net, worst_name, worst, bound))
        if rms > rms_limit:
            failures.append("%s: rms difference %.3g > %.3g" % (net, rms, rms_limit))
        for moment in ("m", "v"):
            x, y = a["%s.adam.%s" % (net, moment)], b["%s.adam.%s" % (net, moment)]
            norm = math.sqrt(sum(p * p for p in x) / len(x))
            diff = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, y)) / len(x))
            ratio = diff / norm if norm > 0 else diff
            print("%s: Adam %s: rms difference / rms = %.3g, bound 0.05" % (net, moment, ratio))
            if not ratio <= 0.05:
                failures.append("%s: Adam %s differs by %.3g of its rms" % (net, moment, ratio))
    return failures


def read_metrics(path):
    rows = {}
    for line in open(path):
        row = json.loads(line)
        rows[row["iteration"]] = row
    return rows


def metrics(path_a, path_b):
    a, b = read_metrics(path_a), read_metrics(path_b)
    common = sorted(set(a) & set(b))
    if not common or common != sorted(a) or common != sorted(b):
        return ["the runs logged different iterations: %s and %s" % (sorted(a), sorted(b))]
    failures = []
    worst = {}
    for it in common:
        for key in ("loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2"):
            x, y = a[it][key], b[it][key]
            before_any_step = it == 1 and key in ("loss_d", "d_x", "d_g_z1")
            tolerance = 1e-6 if before_any_step else 1e-3
            rel = abs(x - y) / max(abs(x), 1e-6)
            tag = "iteration 1 before any step" if before_any_step else "after Adam steps"
            worst[tag] = max(worst.get(tag, (0.0, ""))[0], rel), tolerance
            if not rel <= tolerance:
                failures.append("iteration %d %s: %.9g and %.9g (relative %.3g > %g)" % (it, key, x, y, rel, tolerance))
    for tag, (rel, tolerance) in sorted(worst.items()):
        print("losses and D outputs, %s: largest relative difference %.3g, bound %g" % (tag, rel, tolerance))
    return failures


def main(argv):
    if len(argv) >= 4 and argv[1] == "checkpoints":
        lr, steps = 2e-4, 3
        rest = argv[4:]
        while rest:
            if rest[0] == "--lr":
                lr = float(rest[1])
            elif rest[0] == "--steps":
                steps = int(rest[1])
            else:
                print("unknown option %s" % rest[0])
                return 2
            rest = rest[2:]
        failures = checkpoints(argv[2], argv[3], lr, steps)
    elif len(argv) == 4 and argv[1] == "metrics":
        failures = metrics(argv[2], argv[3])
    else:
        print(__doc__)
        return 2
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
