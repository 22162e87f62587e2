#!/usr/bin/env bash
# bench/quality_curves.py (the training-quality table of tools/gpu-check.sh): runs' curves side by
# side from their metrics.jsonl. On written logs with known values: one row per logged iteration
# (a run that did not log one shows "-"), --every, the means over the whole log and its last
# quarter; each bad input (no log, a line that is not a record, a non-finite value, an empty log,
# a malformed LABEL=RUN_DIR) an error naming the file and line, exit status 1. Then on a real
# training run, so that the field names stay gan's.
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_quality_curves
curves=$GAN_SOURCE_DIR/bench/quality_curves.py

# record ITERATION LOSS_D LOSS_G D_X D_G_Z1: one metrics line as gan writes it
record() {
  printf '{"iteration": %s, "epoch": 0, "loss_d": %s, "loss_g": %s, "d_x": %s, "d_g_z1": %s, "d_g_z2": 0.1}\n' "$@"
}
mkdir -p "$work/a" "$work/b" "$work/empty" "$work/bad" "$work/nan"
{ record 10 1 2 0.5 0.25; record 20 3 4 0.75 0.5; record 30 5 6 1 0.75; record 40 7 8 0.25 1; } >"$work/a/metrics.jsonl"
{ record 10 2 2 2 2; record 20 4 4 4 4; record 30 6 6 6 6; } >"$work/b/metrics.jsonl"
: >"$work/empty/metrics.jsonl"
{ record 10 1 2 3 4; echo '{"iteration": 20, "loss_d": 1}'; } >"$work/bad/metrics.jsonl"
{ record 10 1 2 3 4; record 20 NaN 2 3 4; } >"$work/nan/metrics.jsonl"

# row LABEL: the cells of the table row whose first cell is LABEL, '|'-separated, trimmed
row() { awk -v want="$1" -F' *\\| *' '$2 == want { out = $3; for (i = 4; i < NF; i++) out = out "|" $i; print out }' "$work/out"; }

if expect 0 "| iteration | fp32 | bf16 |" -- python3 "$curves" --title "t" fp32="$work/a" bf16="$work/b"; then
  [ "$(row 10)" = "1.0000 / 2.0000 / 0.5000 / 0.2500|2.0000 / 2.0000 / 2.0000 / 2.0000" ] && ok || fail "row 10: $(row 10)"
  [ "$(row 40)" = "7.0000 / 8.0000 / 0.2500 / 1.0000|-" ] && ok || fail "row 40 (b did not log it): $(row 40)"
  [ "$(row 'mean, whole log')" = "4.0000 / 5.0000 / 0.6250 / 0.6250|4.0000 / 4.0000 / 4.0000 / 4.0000" ] && ok ||
    fail "whole-log means: $(row 'mean, whole log')"
  # the last quarter: a's last of 4 logged, b's last of 3 (never fewer than one)
  [ "$(row 'mean, last quarter')" = "7.0000 / 8.0000 / 0.2500 / 1.0000|6.0000 / 6.0000 / 6.0000 / 6.0000" ] && ok ||
    fail "last-quarter means: $(row 'mean, last quarter')"
  grep -q '^### t$' "$work/out" && ok || fail "no title"
fi
if expect 0 "| 30 |" -- python3 "$curves" --every 2 fp32="$work/a"; then
  [ "$(grep -cE '^\| [0-9]+ \|' "$work/out")" = 3 ] && [ -z "$(row 20)" ] && [ -n "$(row 40)" ] && ok ||
    fail "--every 2 should show 10, 30 and the last, 40: $(grep -E '^\| [0-9]+ \|' "$work/out" | cut -c1-8 | tr '\n' ' ')"
fi
expect 1 "quality_curves: $work/none/metrics.jsonl: No such file or directory" -- python3 "$curves" x="$work/none"
expect 1 "quality_curves: $work/bad/metrics.jsonl, line 2: not a metrics record" -- python3 "$curves" x="$work/bad"
expect 1 "quality_curves: $work/nan/metrics.jsonl, line 2: a non-finite value" -- python3 "$curves" x="$work/nan"
expect 1 "quality_curves: $work/empty/metrics.jsonl: no logged iterations" -- python3 "$curves" x="$work/empty"
expect 1 "quality_curves: '$work/a': want LABEL=RUN_DIR" -- python3 "$curves" "$work/a"

# a real run's log (2 iterations, each logged): its numbers in the table as the log has them
train_tiny_checkpoint "$work/run"
if expect 0 "| 2 |" -- python3 "$curves" gan="$work/run"; then
  want=$(python3 -c 'import json, sys
r = [json.loads(l) for l in open(sys.argv[1])][-1]
print(" / ".join(f"{r[k]:.4f}" for k in ("loss_d", "loss_g", "d_x", "d_g_z1")))' "$work/run/metrics.jsonl")
  [ "$(row 2)" = "$want" ] && ok || fail "row 2 '$(row 2)', want '$want' from the run's metrics.jsonl"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
