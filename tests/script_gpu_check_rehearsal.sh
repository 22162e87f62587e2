#!/usr/bin/env bash
# tools/gpu-check.sh rehearsed on the emulated device (tools/gpu-check-rehearsal.sh), so that the
# one run a GPU machine gets finds the script working: it configures and builds a CUDA build of
# its own, runs the gpu-labelled tests, the selftests, the training runs on both devices with the
# rerun's comparison, the quality runs and curves and the ops benchmark, and writes the report.
# Checked here: the script passes, and the report has what the GPU run is for (each step ok, the
# GPU | CPU loss table with both columns, the curves table, the stored choices). Skips in a build
# without the CUDA backend or without Fashion-MNIST. About 4-6 minutes on 2 cores.
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_gpu_check_rehearsal
if [ ! -f "$GAN_BINARY_DIR/libgan_cuda_emu.so" ]; then
  echo "skipped: a build without the CUDA backend (no libgan_cuda_emu.so)"
  exit 77
fi
require_fmnist
unset GAN_CUDA_MODULE GAN_CUDA_SUBPIXEL GAN_CUDA_IM2COL GAN_CUDA_NHWC GAN_CACHE_DIR

if "$GAN_SOURCE_DIR/tools/gpu-check-rehearsal.sh" "$work/build" >"$work/out" 2>&1; then ok
else
  fail "the rehearsal failed: $(grep -E 'FAILED|TIMEOUT' "$work/out" | head -n 5)" "$(tail -n 3 "$work/out")"
fi
report=$work/build/rehearsal-report.md
grep -q '^verdict: PASSED on gan emulated device' "$report" && ok ||
  fail "verdict: $(grep '^verdict' "$report")"
# every step that ran passed, the speed check alone skipped (no torch that sees CUDA)
summary=$(awk '/^\| step \| result \| seconds \|$/ { on = 1; next } on && !/^\|/ { exit } on && !/^\|---/' "$report")
bad=$(echo "$summary" | grep -vE '\| ok \||^\| dependencies \| skipped|^\| cuDNN \||^\| speed check \| skipped')
[ "$(echo "$summary" | wc -l)" -ge 15 ] && ok || fail "the report's step table has $(echo "$summary" | wc -l) rows"
[ -z "$bad" ] && ok || fail "steps not ok: $bad"
for step in 'gan selftest --device cuda (fp32, deterministic)' 'gan selftest --device cuda (bf16, not deterministic)' \
            'train dcgan_fmnist32 again --device cuda: same losses' \
            'train dcgan_fmnist32 on one stream --device cuda: same losses' 'train dcgan_fmnist32 one epoch --device cuda (bf16)' \
            'gan bench ops --device cuda (dcgan_celeba64, batch 64, bf16, not deterministic)'; do
  grep -qF "| $step | ok |" "$report" && ok || fail "no ok row for: $step"
done
# the GPU | CPU loss table: three iterations, each with a logged line on both sides
rows=$(awk '/^### losses, same seed/ { on = 1; next } on && /^### / { exit } on' "$report" |
       grep -cE '^\[[0-9]+/[0-9]+\]\[[0-9]+/[0-9]+\].*Loss_D.*\|\[[0-9]+/[0-9]+\]\[[0-9]+/[0-9]+\].*Loss_D')
[ "$rows" = 3 ] && ok || fail "the GPU | CPU loss table has $rows rows with both columns, want 3"
grep -q '^| mean, whole log | ' "$report" && ok || fail "no quality curves table"
grep -q '^precision=bf16 .* pass=backward-filter ' "$report" && ok || fail "no bf16 choices listed"
[ -f "$work/build/rehearsal-results/gpu-quality-bf16.png" ] && ok || fail "no bf16 sample grid"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
