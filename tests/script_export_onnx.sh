#!/usr/bin/env bash
# ONNX export with the real tools: train three generators for a few iterations, export each with
# `gan export --format onnx`, check the file with onnx.checker (full_check: also strict shape
# inference), and run it in ONNX Runtime at batch 10 and batch 3 (one file, a symbolic batch)
# against `gan sample --noise` (eval mode) on the same z.
#   dcgan   configs/dcgan_fmnist32.ini      ConvTranspose, BatchNormalization (2-d), Relu, Tanh
#   mlp     configs/mlp_mnist.ini           Gemm (bias), BatchNormalization (1-d), Reshape
#   mixed   a generator written for this test (PyTorch's default init, so that its outputs are not
#           near 0 after 3 steps): Gemm, Reshape, BN after a view, Conv (bias), LeakyRelu, dropout
#           (dropped), Sigmoid, ConvTranspose (bias and not), Flatten, Gemm (no bias), Reshape
# Needs the interop venv of tools/setup.sh (onnx, onnxruntime, numpy in $GAN_VENV_PYTHON).
set -euo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_export_onnx
require_python "$py" onnx onnxruntime numpy
require_fmnist
data=$fmnist_train_images

# [100] -> 256 -> [16, 2, 8] (not square: a reshape that swapped H and W would show) -> conv
# [32, 2, 8] -> convt [16, 4, 16] -> [8, 8, 32] -> [1, 16, 64] -> flatten 1024 -> [1, 32, 32]
mixed_g="linear(256,bias) relu reshape(16,2,8) bn conv(32,3,1,1,bias) bn lrelu(0.2) dropout(0.2)
  sigmoid convt(16,4,2,1) bn relu convt(8,4,2,1,bias) bn relu convt(1,4,2,1) flatten linear(1024)
  reshape(1,32,32) tanh"

train() { # NAME CONFIG [overrides...]
  local name=$1 config=$2; shift 2
  "$gan" train "$GAN_SOURCE_DIR/configs/$config" "$@" data.path="$data" train.iterations=3 \
    train.batch_size=16 log.every=1 log.sample_every=0 --device cpu --quiet --out "$work/$name/run" \
    > "$work/$name/train.log"
  ls "$work/$name"/run/checkpoints/ckpt_*.safetensors | tail -n 1
}

declare -A ckpt
for name in dcgan mlp mixed; do mkdir -p "$work/$name"; done
ckpt[dcgan]=$(train dcgan dcgan_fmnist32.ini)
ckpt[mlp]=$(train mlp mlp_mnist.ini)
ckpt[mixed]=$(train mixed dcgan_fmnist32.ini "model.generator=$mixed_g" model.init=pytorch)

# dcgan through the .onnx extension (no --format), the others with --format onnx
"$gan" export "${ckpt[dcgan]}" -o "$work/dcgan/G.onnx"
"$gan" export "${ckpt[mlp]}" --format onnx -o "$work/mlp/G.onnx"
"$gan" export "${ckpt[mixed]}" --format onnx -o "$work/mixed/G.onnx"
for name in dcgan mlp mixed; do   # the same weights as safetensors, compared below
  "$gan" export "${ckpt[$name]}" -o "$work/$name/G.safetensors" > /dev/null
done

# the command line refuses what it cannot do, and leaves nothing half-written
if "$gan" export "${ckpt[dcgan]}" --format tflite -o "$work/x.onnx" 2>"$work/bad.err"; then
  echo "not ok: --format tflite was accepted"; exit 1
fi
grep -q "unknown format 'tflite'" "$work/bad.err" || { echo "not ok: message: $(cat "$work/bad.err")"; exit 1; }
if "$gan" export "${ckpt[dcgan]}" --format onnx -o "$work/no/such/dir/G.onnx" 2>"$work/bad.err"; then
  echo "not ok: export into a missing directory succeeded"; exit 1
fi
[ ! -e "$work/no" ] || { echo "not ok: the failed export left files behind"; exit 1; }

# latent vectors in the rank each model's input has (checked below): [N, nz, 1, 1] for DCGAN,
# [N, nz] for generators that start with nn.Linear
"$py" - "$work" <<'PY'
import sys, numpy as np
work = sys.argv[1]
rng = np.random.default_rng(5)
for name, tail, uniform in (("dcgan", (1, 1), False), ("mlp", (), True), ("mixed", (), False)):
    for n in (10, 3):
        shape = (n, 100) + tail
        z = rng.random(shape) if uniform else rng.standard_normal(shape)
        np.save(f"{work}/{name}/z{n}.npy", z.astype(np.float32))
PY
for name in dcgan mlp mixed; do
  for n in 10 3; do
    "$gan" sample "${ckpt[$name]}" --noise "$work/$name/z$n.npy" --npy "$work/$name/ours$n.npy" \
      --device cpu > /dev/null
  done
done

"$py" - "$work" <<'PY'
import json, struct, sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

work = sys.argv[1]
# Both sides run the same FP32 math (ORT's MLAS kernels vs OpenBLAS sgemm over im2col) and differ
# only in summation order: the observed max abs difference is 2e-8 to 6e-8 on outputs up to ~0.1
# (3 training steps). 1e-5 is ~200x that, yet catches subtle mapping bugs: BN's epsilon written as
# 1e-3 instead of 1e-5 shows as 6e-5 to 1e-4. A wrong BN statistic gives far more: checked below,
# the same file with the running statistics left at their initial values (mean 0, variance 1)
# must differ from gan sample by more than 100x the tolerance (observed 0.02 to 0.09), or this
# comparison could not catch such a bug.
TOL = 1e-5
failures = 0
expect_ops = {
    "dcgan": {"ConvTranspose", "BatchNormalization", "Relu", "Tanh"},
    "mlp": {"Gemm", "BatchNormalization", "Relu", "Tanh", "Reshape"},
    "mixed": {"Gemm", "BatchNormalization", "Relu", "Reshape", "Conv", "LeakyRelu", "Sigmoid",
              "ConvTranspose", "Flatten", "Tanh"},
}

def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    return {name: np.frombuffer(data[info["data_offsets"][0]:info["data_offsets"][1]],
                                dtype=dtypes[info["dtype"]]).reshape(info["shape"])
            for name, info in header.items() if name != "__metadata__"}

def dims(value_info):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]

def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"not ok: {what}")

for name in ("dcgan", "mlp", "mixed"):
    path = f"{work}/{name}/G.onnx"
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)   # raises on any invalid field or shape
    check(model.ir_version == 8, f"{name}: ir_version {model.ir_version}")
    opsets = [(o.domain, o.version) for o in model.opset_import]
    check(opsets == [("", 17)], f"{name}: opset_import {opsets}")
    check(model.producer_name == "gan", f"{name}: producer_name {model.producer_name!r}")
    g = model.graph
    check([i.name for i in g.input] == ["z"], f"{name}: inputs {[i.name for i in g.input]}")
    check([o.name for o in g.output] == ["images"], f"{name}: outputs {[o.name for o in g.output]}")
    z10 = np.load(f"{work}/{name}/z10.npy")
    in_dims, out_dims = dims(g.input[0]), dims(g.output[0])
    check(in_dims == ["batch"] + list(z10.shape[1:]), f"{name}: input dims {in_dims}")
    ours10 = np.load(f"{work}/{name}/ours10.npy")
    check(out_dims == ["batch"] + list(ours10.shape[1:]), f"{name}: output dims {out_dims}")
    ops = {n.op_type for n in g.node}
    check(ops == expect_ops[name], f"{name}: operators {sorted(ops)}, expected {sorted(expect_ops[name])}")
    check("Dropout" not in ops, f"{name}: a Dropout node in an eval-mode export")
    for node in g.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "BatchNormalization":   # PyTorch's eps, inference form
            check(attrs.get("epsilon") == np.float32(1e-5) and attrs.get("training_mode", 0) == 0,
                  f"{name}: {node.name} attributes {attrs}")
        if node.op_type == "LeakyRelu":
            check(attrs.get("alpha") == np.float32(0.2), f"{name}: {node.name} attributes {attrs}")
        if node.op_type == "Gemm":
            check(attrs.get("transB") == 1 and attrs.get("transA", 0) == 0, f"{name}: {node.name} attributes {attrs}")
    check(all(t.HasField("raw_data") for t in g.initializer), f"{name}: an initializer without raw_data")
    # the initializers are the safetensors export's tensors, names and values (all but the
    # num_batches_tracked counters, which eval mode does not use), bit for bit
    st = load_safetensors(f"{work}/{name}/G.safetensors")
    st = {k: v for k, v in st.items() if not k.endswith(".num_batches_tracked")}
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer if not t.name.startswith("view")}
    check(sorted(inits) == sorted(st), f"{name}: initializers {sorted(inits)} vs export {sorted(st)}")
    for k in set(inits) & set(st):
        check(inits[k].dtype == np.float32 and inits[k].shape == st[k].shape and
              np.array_equal(inits[k], st[k]), f"{name}: initializer {k} differs from the export")

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for n in (10, 3):
        z = np.load(f"{work}/{name}/z{n}.npy")
        theirs = session.run(["images"], {"z": z})[0]
        ours = np.load(f"{work}/{name}/ours{n}.npy")
        if theirs.shape != ours.shape:
            check(False, f"{name} batch {n}: shape {theirs.shape} vs gan sample {ours.shape}")
            continue
        err = float(np.abs(theirs - ours).max())
        print(f"{name} batch {n}: max abs diff {err:.3g} over {ours.size} values "
              f"(outputs up to {float(np.abs(ours).max()):.3g})")
        check(err < TOL, f"{name} batch {n}: ONNX Runtime vs gan sample differ by {err:.3g} (tolerance {TOL})")
        check(float(ours.std()) > 1e-3, f"{name} batch {n}: outputs nearly constant (std {ours.std():.3g})")

    # sensitivity: running statistics reset to mean 0, variance 1
    for t in model.graph.initializer:
        if t.name.endswith(".running_mean") or t.name.endswith(".running_var"):
            fill = np.zeros if t.name.endswith("mean") else np.ones
            t.CopyFrom(numpy_helper.from_array(fill(tuple(t.dims), np.float32), t.name))
    wrong_session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    wrong = float(np.abs(wrong_session.run(["images"], {"z": z10})[0] - ours10).max())
    print(f"{name}: with the running statistics reset it would differ by {wrong:.3g}")
    check(wrong > 100 * TOL, f"{name}: the comparison cannot tell BN statistics apart ({wrong:.3g})")

print(f"3 models checked, {failures} failures")
sys.exit(1 if failures else 0)
PY
echo "ok: ONNX export checked by onnx.checker and ONNX Runtime"
