# Shared by the tests/script_dist_*.sh tests (sourced, not run): data-parallel runs under
# Debian's OpenMPI over loopback, as CI runs them (as root, with more ranks than cores).
source "$(dirname "${BASH_SOURCE[0]}")/lib_script.sh"

# mpirun as root (CI's containers) must be allowed twice over; more ranks than cores need
# --oversubscribe. The shared-memory transport's single-copy
# mode needs ptrace rights that containers often lack: the plain copy works everywhere.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# No binding: two tests that run at once (ctest -j) would otherwise each bind their rank 0 to
# core 0.
mpirun_options="--oversubscribe --bind-to none"
export OMPI_MCA_btl_vader_single_copy_mechanism=none
compare="$(dirname "${BASH_SOURCE[0]}")/dist_compare.py"
# Sanitizer builds (GAN_SANITIZE): LeakSanitizer reports the memory Open MPI never frees. The
# suppressions name Open MPI's libraries only (a leak of gan's own still fails); full stacks
# (fast_unwind_on_malloc=0) reach them from the components Open MPI has unloaded by then. No effect
# on other builds.
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan_openmpi.supp:fast_unwind_on_malloc=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1

# require_mpi: skip unless mpirun runs and this gan was built with MPI.
require_mpi() {
  if ! command -v mpirun >/dev/null; then
    echo "skipped: no mpirun (openmpi-bin: tools/setup.sh)"; exit 77
  fi
  if ! "$gan" info --no-bench 2>/dev/null | grep -q "MPI .*built with"; then
    echo "skipped: this gan was built without MPI (libopenmpi-dev: tools/setup.sh, then reconfigure)"; exit 77
  fi
}

# ranks N COMMAND...: COMMAND on N ranks, its output as mpirun gives it; a run that hangs is
# stopped after 120 s (every run here takes a few seconds).
ranks() {
  local n=$1; shift
  timeout -k 5 120 mpirun $mpirun_options -np "$n" "$@" </dev/null
}

# train_run DIR N [key=value ...]: CONFIG (default dcgan_fmnist32) on the CPU at global batch 16
# with a log line every iteration, into DIR, on N ranks (N = 0: one process without mpirun).
# The output goes to DIR.log; fails the test when the run fails.
config="$GAN_SOURCE_DIR/configs/dcgan_fmnist32.ini"
train_run() {
  local dir=$1 n=$2; shift 2
  local run=("$gan" train "$config" train.batch_size=16 log.every=1 log.sample_every=0 "$@" --device cpu
             --quiet --out "$dir")
  local status=0
  if [ "$n" = 0 ]; then "${run[@]}" >"$dir.log" 2>&1 || status=$?
  else ranks "$n" "${run[@]}" >"$dir.log" 2>&1 || status=$?; fi
  if [ "$status" != 0 ]; then fail "$n ranks, $*: exit $status: $(tail -n 5 "$dir.log")"; return 1; fi
  ok
}

# last_checkpoint DIR: the newest checkpoint's path
last_checkpoint() { ls "$1"/checkpoints/ckpt_*.safetensors | tail -n 1; }

# close WHAT STEPS RUN_A RUN_B: the two runs' newest checkpoints and metrics.jsonl within the
# tolerances of tests/dist_compare.py (STEPS Adam steps); prints the measured differences.
close() {
  local what=$1 steps=$2 a=$3 b=$4
  echo "-- $what"
  if python3 "$compare" checkpoints "$(last_checkpoint "$a")" "$(last_checkpoint "$b")" --lr 2e-4 \
       --steps "$steps" && python3 "$compare" metrics "$a/metrics.jsonl" "$b/metrics.jsonl"; then ok
  else fail "$what: the runs differ beyond the tolerances (above)"; fi
}
