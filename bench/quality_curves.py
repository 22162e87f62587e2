#!/usr/bin/env python3
"""Training curves of several gan runs side by side, as one markdown table (issue 11's quality
check: dcgan_fmnist32 for one epoch in each precision, beside fp32's).

    bench/quality_curves.py [--title TEXT] [--every N] LABEL=RUN_DIR [LABEL=RUN_DIR ...]

Each RUN_DIR is the --out folder of a `gan train` run; its metrics.jsonl (one line per logged
iteration) gives the curves. One row per logged iteration (every N-th of those logged, with the
last always shown; default every one), one column per run, each cell
"Loss_D / Loss_G / D(x) / D(G(z))" as the training log prints them (D(G(z)) before the D step,
the tutorial's D_G_z1). An iteration a run did not log shows "-". The last rows are the means over
each run's whole log and over its last quarter (where training has settled), so that the runs can
be compared on more than one noisy point.

A missing or unreadable metrics.jsonl, a line without those four numbers, or a run that logged
nothing is an error naming the file (and the line), with exit status 1.
"""
import argparse
import json
import math
import os
import sys

FIELDS = ("loss_d", "loss_g", "d_x", "d_g_z1")


class Bad(Exception):
    pass


def read_run(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise Bad(f"{path}: {e.strerror}")
    rows = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            values = tuple(float(record[k]) for k in FIELDS)
            iteration = int(record["iteration"])
        except (ValueError, KeyError, TypeError) as e:
            raise Bad(f"{path}, line {number}: not a metrics record with iteration, {', '.join(FIELDS)} ({e})")
        if not all(math.isfinite(v) for v in values):
            raise Bad(f"{path}, line {number}: a non-finite value in {values}")
        rows[iteration] = values
    if not rows:
        raise Bad(f"{path}: no logged iterations")
    return rows


def cell(values):
    return " / ".join(f"{v:.4f}" for v in values) if values else "-"


def mean(rows, iterations):
    chosen = [rows[i] for i in iterations]
    return tuple(sum(r[k] for r in chosen) / len(chosen) for k in range(len(FIELDS)))


def table(runs, title, every):
    labels = [label for label, _ in runs]
    iterations = sorted(set().union(*(rows.keys() for _, rows in runs)))
    shown = [it for k, it in enumerate(iterations) if k % every == 0 or it == iterations[-1]]
    out = []
    if title:
        out += [f"### {title}", ""]
    out.append("each cell: Loss_D / Loss_G / D(x) / D(G(z)) (before the D step)")
    out.append("")
    out.append("| iteration | " + " | ".join(labels) + " |")
    out.append("|---|" + "---|" * len(labels))
    for it in shown:
        out.append(f"| {it} | " + " | ".join(cell(rows.get(it)) for _, rows in runs) + " |")
    whole = [cell(mean(rows, sorted(rows))) for _, rows in runs]
    quarter = []
    for _, rows in runs:
        its = sorted(rows)
        quarter.append(cell(mean(rows, its[len(its) - max(1, len(its) // 4):])))
    out.append("| mean, whole log | " + " | ".join(whole) + " |")
    out.append("| mean, last quarter | " + " | ".join(quarter) + " |")
    return "\n".join(out) + "\n"


def main(argv):
    parser = argparse.ArgumentParser(description="gan runs' training curves side by side (markdown)")
    parser.add_argument("--title", default="", help="a heading for the table")
    parser.add_argument("--every", type=int, default=1, help="show every N-th logged iteration (and the last)")
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be at least 1")
    runs = []
    try:
        for spec in args.runs:
            label, sep, run_dir = spec.partition("=")
            if not sep or not label or not run_dir:
                raise Bad(f"'{spec}': want LABEL=RUN_DIR")
            runs.append((label, read_run(run_dir)))
    except Bad as e:
        print(f"quality_curves: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(table(runs, args.title, args.every))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
