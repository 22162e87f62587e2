#!/usr/bin/env bash
# bench/gpu_speed.py (the GPU speed check of tools/gpu-check.sh) and its PyTorch worker
# (bench/compare_pytorch.py --worker) on the CPU, on tiny settings: dcgan_fmnist32 at batch 4, 2
# iterations, 1 round. Only gan and PyTorch in fp32 can run here; the checks are that the driver
# runs every variant it should, prints one table with the promised rows and columns, reports
# gan's refusals as "not implemented in gan" (bf16 today, read from gan itself), skips PyTorch's
# tf32/bf16/CUDA-graph cells with the reason, cuts rounds to --budget-seconds, and still prints the
# table when SIGTERM stops it. The worker's tf32 and bf16 set-ups (channels_last, autocast,
# BCEWithLogitsLoss) and its graph routine's own code run under --cpu-code-path-check (a
# stand-in for torch.cuda; nothing about real capture is proven here). No numbers are judged.
# Needs Debian's python3-torch under /usr/bin/python3 (skips without it).
set -uo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_gpu_speed
py=${GAN_TORCH_PYTHON:-/usr/bin/python3}
require_python "$py" torch
bench=$GAN_SOURCE_DIR/bench
tiny=(--device cpu --gan "$gan" --configs dcgan_fmnist32:4 --iterations 2 --warmup 1)

# cell NAME: the cell of the dcgan_fmnist32 row under the column NAME of the table in $work/out.
cell() {
  awk -v want="$1" -F' *\\| *' '
    /^\| config, batch \|/ { for (i = 2; i < NF; i++) if ($i == want) col = i }
    /^\| dcgan_fmnist32, 4 \|/ && col { print $col; exit }' "$work/out"
}

# ---- the driver, every mode, one round ----------------------------------------------------------
if expect 0 "reproduce: " -- "$py" "$bench/gpu_speed.py" "${tiny[@]}" --rounds 1 \
     --json "$work/speed.json" --table-out "$work/table.md"; then
  cp "$work/out" "$work/run1.out"
  [ "$(grep -c '^| config, batch |' "$work/out")" = 1 ] && ok || fail "not exactly one table header"
  [ "$(grep -c '^| dcgan_fmnist32, 4 |' "$work/out")" = 1 ] && ok || fail "not exactly one dcgan_fmnist32 row"
  header=$(grep '^| config, batch |' "$work/out")
  for mode in fp32 tf32 bf16; do
    for col in "gan ms/it" "PyTorch ms/it" "speedup" "PyTorch graph ms/it" "speedup vs graph" "gan img/s" \
               "gan % of floor"; do
      case "$header" in *"| $mode $col |"*) ok ;; *) fail "no column '$mode $col'" ;; esac
    done
  done
  case "$header" in *"| fp32 deterministic gan ms/it | fp32 deterministic speedup |"*) ok ;;
    *) fail "no fp32 deterministic columns" ;; esac
  columns=$(echo "$header" | awk -F'|' '{print NF - 2}')
  row_columns=$(grep '^| dcgan_fmnist32, 4 |' "$work/out" | awk -F'|' '{print NF - 2}')
  case "$header" in
    *"| bf16 FP32-edge gan ms/it | bf16 edge gain | bf16 one-stream gan ms/it | bf16 side-stream gain |"*) ok ;;
    *) fail "no bf16 FP32-edge and one-stream columns" ;; esac
  case "$header" in *"| tf32 NCHW-edge gan ms/it | tf32 edge gain |"*) ok ;;
    *) fail "no tf32 NCHW-edge columns" ;; esac
  [ "$columns" = 30 ] && [ "$row_columns" = 30 ] && ok || fail "header $columns, row $row_columns columns, want 30"

  # fp32 ran on both sides: numbers and ratios
  for col in "fp32 gan ms/it" "fp32 PyTorch ms/it" "fp32 deterministic gan ms/it" "fp32 gan img/s"; do
    [[ "$(cell "$col")" =~ ^[0-9.]+$ ]] && ok || fail "'$col' is '$(cell "$col")', want a number"
  done
  for col in "fp32 speedup" "fp32 deterministic speedup"; do
    [[ "$(cell "$col")" =~ ^[0-9.]+x$ ]] && ok || fail "'$col' is '$(cell "$col")', want a ratio"
  done
  [[ "$(cell "fp32 gan % of floor")" =~ ^[0-9.]+%$ ]] && ok || fail "no fp32 share of the floor: $(cell "fp32 gan % of floor")"

  # gan's bf16: what gan says about train.precision=bf16 decides what the cell must say
  if "$gan" bench train dcgan_fmnist32 train.batch_size=4 train.precision=bf16 --device cpu --iterations 1 \
       --warmup 0 --rounds 1 >"$work/bf16.out" 2>"$work/bf16.err"; then
    [[ "$(cell "bf16 gan ms/it")" =~ ^[0-9.]+$ ]] && ok || fail "gan ran bf16 but its cell is '$(cell "bf16 gan ms/it")'"
  elif refusal=$(grep -v '^[[:space:]]*$' "$work/bf16.err" | tail -n 1) && [[ "$refusal" == *train.precision* ]]; then
    for col in "bf16 gan ms/it" "bf16 speedup" "bf16 gan img/s" "bf16 gan % of floor" "bf16 speedup vs graph" \
               "bf16 FP32-edge gan ms/it" "bf16 edge gain" "bf16 one-stream gan ms/it" "bf16 side-stream gain"; do
      [ "$(cell "$col")" = "not implemented in gan" ] && ok || fail "'$col' is '$(cell "$col")', want 'not implemented in gan'"
    done
    grep -qF "gan bf16: not implemented in gan: \"$refusal\"" "$work/out" && ok ||
      fail "the notes do not quote gan's refusal of bf16 ($refusal)"
  else
    fail "gan failed on bf16 without a word about train.precision: $(tail -n 3 "$work/bf16.err")"
  fi
  # the CPU backend refuses tf32: said the same way
  for col in "tf32 gan ms/it" "tf32 NCHW-edge gan ms/it" "tf32 edge gain"; do
    [ "$(cell "$col")" = "not implemented in gan" ] && ok || fail "'$col' is '$(cell "$col")', want 'not implemented in gan'"
  done
  # PyTorch's CUDA-only cells are skipped with the reason, and the notes say why
  for col in "tf32 PyTorch ms/it" "bf16 PyTorch ms/it" "fp32 PyTorch graph ms/it" "bf16 PyTorch graph ms/it"; do
    [ "$(cell "$col")" = "skipped: needs CUDA" ] && ok || fail "'$col' is '$(cell "$col")', want 'skipped: needs CUDA'"
  done
  grep -q "^- PyTorch tf32, bf16 and the CUDA graph: skipped: needs CUDA (" "$work/out" && ok || fail "no reason for the skips"
  grep -q "^- dcgan_fmnist32 batch 4, fp32 floor: " "$work/out" && ok || fail "no fp32 floor note"
  grep -q "^reproduce: .*bench/gpu_speed.py --device cpu" "$work/out" && ok || fail "no reproduce line"
  # the same table in --table-out, and every measurement in --json
  grep -qF "$header" "$work/table.md" && ok || fail "--table-out lacks the table"
  "$py" -c "import json, sys; d = json.load(open(sys.argv[1])); r = d['rounds'][0]['dcgan_fmnist32:4'];
assert sorted(r['gan']) == ['bf16', 'bf16-f32edges', 'bf16-onestream', 'fp32', 'fp32-det', 'tf32', 'tf32-f32edges'], sorted(r['gan'])
assert r['torch']['fp32']['ms'] > 0 and r['torch']['bf16'] == {'skipped': 'skipped: needs CUDA'}, r['torch']" \
    "$work/speed.json" 2>"$work/json.err" && ok || fail "--json: $(tail -n 1 "$work/json.err")"
fi

# ---- --budget-seconds: round 1 shows that no more fit, so one round in all ----------------------
if expect 0 "budget: round 1 took" -- "$py" "$bench/gpu_speed.py" "${tiny[@]}" --modes fp32 --rounds 3 \
     --budget-seconds 1; then
  grep -q "^1 round (3 asked; cut by --budget-seconds" "$work/out" && ok || fail "the table does not say the rounds were cut"
  [ "$(grep -c '^round [0-9]* took' "$work/out")" = 1 ] && ok || fail "more than one round ran under a 1 s budget"
fi

# ---- gan's captured graph (CUDA only): a stand-in gan that adds bench train's graph line -----------
cat > "$work/gan_graph.sh" <<EOF
#!/usr/bin/env bash
"$gan" "\$@"; status=\$?
[ "\$1 \$2" = "bench train" ] && [ \$status = 0 ] &&
  echo "graph       : the iteration captured once and replayed, 321 nodes per replay: 300 kernels, 0 copies," \
    "21 memsets, 0 other"
exit \$status
EOF
chmod +x "$work/gan_graph.sh"
graph_run=(--device cpu --gan "$work/gan_graph.sh" --configs dcgan_fmnist32:4 --iterations 2 --warmup 1)
if expect 0 "reproduce: " -- "$py" "$bench/gpu_speed.py" "${graph_run[@]}" --modes fp32 --rounds 1 --no-graph; then
  grep -qF -- "- dcgan_fmnist32 batch 4, fp32: gan's captured iteration has 321 nodes, 300 of them kernels" \
    "$work/out" && ok || fail "no note of gan's graph nodes: $(grep -c nodes "$work/out") lines name nodes"
fi

# ---- SIGTERM (what gpu-check's time limit sends): the finished rounds' table, exit 1 ------------
"$py" "$bench/gpu_speed.py" "${tiny[@]}" --modes fp32 --rounds 50 --budget-seconds 1000 >"$work/term.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q '^round 1 took' "$work/term.out" && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"; status=$?
[ "$status" = 1 ] && ok || fail "after SIGTERM the driver exited $status, want 1"
grep -q '^| dcgan_fmnist32, 4 |' "$work/term.out" && ok || fail "no table after SIGTERM: $(tail -n 3 "$work/term.out")"
grep -q '^- INTERRUPTED (SIGTERM) after [1-9][0-9]* finished round' "$work/term.out" && ok || fail "no INTERRUPTED note"

# ---- the worker: modes, the --tf32 alias, the graph routine, refusals ---------------------------
worker=("$py" "$bench/compare_pytorch.py" --worker --config dcgan_fmnist32 --batch 4 --threads 1 --iterations 2 --warmup 1)
check_json() {  # check_json MODE GRAPH: the worker's JSON line in $work/out
  "$py" -c "import json, math, sys; r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert r['mode'] == sys.argv[2], r['mode']
assert (r['params_g'], r['params_d']) == (1066880, 661248), (r['params_g'], r['params_d'])
assert r['ms_per_it'] > 0 and all(map(math.isfinite, r['losses'])), r
assert ('graph_ms_per_it' in r) == (sys.argv[3] == 'graph') and 'graph_error' not in r, r
if sys.argv[2] != 'fp32': assert 'channels_last' in r['settings'], r['settings']
if sys.argv[2] == 'bf16': assert 'BCEWithLogitsLoss' in r['settings'], r['settings']" "$work/out" "$1" "$2" \
    2>"$work/check.err" && ok || fail "worker $1 $2: $(tail -n 1 "$work/check.err")"
}
expect 0 "" -- "${worker[@]}" && check_json fp32 eager
expect 0 "" -- "${worker[@]}" --tf32 --cpu-code-path-check && check_json tf32 eager
expect 0 "" -- "${worker[@]}" --mode bf16 --graph --cpu-code-path-check && check_json bf16 graph
expect 2 "--mode bf16 needs --device cuda" -- "${worker[@]}" --mode bf16
expect 2 "--graph needs --device cuda" -- "${worker[@]}" --graph
expect 2 "--modes takes some of fp32,tf32,bf16" -- "$py" "$bench/gpu_speed.py" "${tiny[@]}" --modes fp16

# ---- the CUDA code that cannot run here: at least no undefined names (pyflakes, where installed) --
if "$py" -m pyflakes --version >/dev/null 2>&1; then
  expect 0 "" -- "$py" -m pyflakes "$bench/gpu_speed.py" "$bench/compare_pytorch.py" "$bench/compare_pytorch_gpu.py"
else
  echo "note: no pyflakes for $py: the static check of the CUDA-only code is skipped"
fi

echo "script_gpu_speed: $passed passed, $failed failed"
[ "$failed" = 0 ]
