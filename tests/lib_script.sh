# Shared by the tests/script_*.sh tests (sourced, not run): the work directory, the skips for a
# missing interpreter, package or dataset (exit 77 with the reason), a short training run that
# leaves a checkpoint, and pass/fail counting.

# script_setup NAME: $gan, $work (a fresh $GAN_BINARY_DIR/test-tmp/NAME) and $py (the interop venv's
# interpreter, possibly empty).
script_setup() {
  gan="${GAN_EXE:?}"
  py="${GAN_VENV_PYTHON:-}"
  work="${GAN_BINARY_DIR:?}/test-tmp/$1"
  rm -rf "$work"; mkdir -p "$work"
}

# require_python PYTHON MODULE...: skip unless PYTHON runs and imports every MODULE.
require_python() {
  local python=$1; shift
  if [ -z "$python" ] || [ ! -x "$python" ]; then
    echo "skipped: no interpreter at '$python' (tools/setup.sh makes .venv for GAN_VENV_PYTHON)"; exit 77
  fi
  local imports; imports=$(IFS=,; echo "$*")
  if ! "$python" -c "import $imports" 2>"$work/import.err"; then
    echo "skipped: $python cannot import $imports (tools/setup.sh installs them):"
    tail -n 1 "$work/import.err"; exit 77
  fi
}

fmnist_train_images=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

# require_fmnist: skip unless Debian's dataset-fashion-mnist is installed.
require_fmnist() {
  if [ ! -f "$fmnist_train_images" ]; then
    echo "skipped: $fmnist_train_images missing (dataset-fashion-mnist: tools/setup.sh)"; exit 77
  fi
}

# train_fmnist_checkpoint DIR [key=value ...]: dcgan_fmnist32 for 3 iterations of batch 16 on the
# CPU into DIR; sets $ckpt to its newest checkpoint.
train_fmnist_checkpoint() {
  local dir=$1; shift
  "$gan" train "$GAN_SOURCE_DIR/configs/dcgan_fmnist32.ini" train.iterations=3 train.batch_size=16 \
    log.every=1 log.sample_every=0 "$@" --device cpu --quiet --out "$dir" > "$dir.log"
  ckpt=$(ls "$dir"/checkpoints/ckpt_*.safetensors | tail -n 1)
}

# Counting checks: ok, fail MESSAGE, and expect STATUS NEEDLE -- COMMAND... (the command exits
# with STATUS and says NEEDLE on stdout or stderr); finish prints the tally and sets the status.
passed=0; failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
expect() {
  local want=$1 needle=$2; shift 3
  "$@" >"$work/out" 2>"$work/err"; local got=$?
  if [ "$got" != "$want" ]; then fail "$* exited $got, want $want: $(tail -n 5 "$work/err")"; return 1; fi
  if [ -n "$needle" ] && ! grep -qF -- "$needle" "$work/err" "$work/out"; then
    fail "$*: output lacks '$needle': $(tail -n 5 "$work/err")"; return 1; fi
  ok
}

# `gan bench ops` output checks. bench_x_it FILE ROW...: each ROW is "OP|LAYER|N", and the row OP
# of LAYER has N in its x/it column (the field before the algorithm). bench_total FILE: the
# iteration line's total is the sum of best ms x x/it over the rows (the EMA's apart), within
# the printed rounding.
bench_x_it() {
  local file=$1 row op layer n got; shift
  for row in "$@"; do
    IFS='|' read -r op layer n <<<"$row"
    got=$(perl -ne 'print "$1\n" if /^\Q'"$op"'\E +\Q'"$layer"'\E .*?\d+\.\d{4} +\d+\.\d{4} +\S+ +\S+ +\S+% +(\d+)  /' \
          "$file")
    [ "$got" = "$n" ] && ok || fail "bench ops: $op $layer x/it '$got', want $n"
  done
}
bench_total() {
  perl -ne '$s += $1 * $2 if /^(?!ema_update)\S.*?(\d+\.\d{4}) +\d+\.\d{4} +\S+ +\S+ +\S+% +(\d+)  /;
            $t = $1 if /^iteration   : ([0-9.]+) ms/; END { exit(abs($s - $t) <= 0.02 ? 0 : 1) }' "$1" && ok ||
    fail "bench ops: the iteration total is not the sum of best ms x x/it: $(grep '^iteration' "$1")"
}

# make_tiny_idx FILE [SIDE]: 32 gray SIDExSIDE images (8x8 by default) as an MNIST-style IDX3 file
# (deterministic content).
make_tiny_idx() {
  python3 -c '
import struct, sys
n, side = 32, int(sys.argv[2])
pixels = bytes((i * 37 + p * 11 + (p // side) * 5) % 256 for i in range(n) for p in range(side * side))
open(sys.argv[1], "wb").write(struct.pack(">IIII", 0x803, n, side, side) + pixels)' "$1" "${2:-8}"
}

# train_tiny_checkpoint DIR: a DCGAN-shaped model of 8x8 gray images (G [8,1,1] -> [1,8,8]) trained
# 2 iterations on make_tiny_idx's data into DIR; sets $ckpt to its checkpoint and $tiny_data to
# the IDX file.
train_tiny_checkpoint() {
  local dir=$1
  tiny_data="$dir.idx3-ubyte"
  make_tiny_idx "$tiny_data"
  printf '%s\n' '[model]' 'nz = 8' 'generator = convt(8,4,1,0) bn relu convt(1,4,2,1) tanh' \
    'discriminator = conv(8,4,2,1) lrelu(0.2) conv(1,4,1,0) sigmoid' '[data]' "path = $tiny_data" \
    'image_size = 8' 'channels = 1' '[train]' 'iterations = 2' 'batch_size = 8' '[log]' 'every = 1' \
    'sample_every = 0' 'checkpoint_every = 0' > "$dir.ini"
  "$gan" train "$dir.ini" --device cpu --quiet --out "$dir" > "$dir.log" 2>&1 ||
    { echo "FAIL: training the tiny model: $(tail -n 3 "$dir.log")"; exit 1; }
  ckpt=$(ls "$dir"/checkpoints/ckpt_*.safetensors | tail -n 1)
}
