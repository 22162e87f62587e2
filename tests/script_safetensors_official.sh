#!/usr/bin/env bash
# Our safetensors files against the official `safetensors` package (PyPI, pinned in
# tools/requirements-interop.txt, in .venv), both ways:
#  1. a training checkpoint and an export (dcgan_fmnist32, 3 iterations) load with
#     safetensors.numpy.load_file and safe_open(framework="numpy"): every tensor, the dtypes and
#     shapes PyTorch's DCGAN generator has, str -> str metadata, and the same names, dtypes, shapes
#     and bytes as our own reader sees; the export's tensors are the checkpoint's generator ones;
#  2. a file the official package writes (save_file, with metadata; every dtype numpy and we share,
#     scalars, an empty tensor) is read by our reader with the same contents;
#  3. 5000 random mutations (fixed seed) of a valid file: our reader accepts exactly what the
#     official one accepts, reading the same contents, except where gan/safetensors.h says we
#     refuse more (names or metadata keys given twice, dtypes we do not know, more than 8
#     dimensions, a header not starting with '{', sizes above 2^53).
# Our reader's view comes from `test_safetensors_fuzz --dump` (see that file).
set -euo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_safetensors_official
reader="$GAN_BINARY_DIR/tests/test_safetensors_fuzz"
require_python "$py" numpy safetensors safetensors.numpy
if [ ! -x "$reader" ]; then
  echo "FAIL: $reader is missing (build the tests)"; exit 1
fi
require_fmnist
train_fmnist_checkpoint "$work/run"
"$gan" export "$ckpt" -o "$work/G.safetensors"

"$py" - "$work" "$reader" "$ckpt" <<'PY'
import os, random, struct, subprocess, sys
import numpy as np
import safetensors
from safetensors import safe_open, SafetensorError
from safetensors.numpy import load_file, save_file

work, reader, ckpt = sys.argv[1:4]
export = os.path.join(work, "G.safetensors")
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)

NP_OF = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
         "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
ST_OF = {np.dtype(v): k for k, v in NP_OF.items()}

def fnv1a64(b):
    h = 0xcbf29ce484222325
    for byte in b:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h

def unhex(s):
    return "" if s == "-" else bytes.fromhex(s).decode("utf-8")

def ours(paths):
    """Our reader's view of each file: None (refused, with the message) or (tensors, metadata)."""
    out, results = [], []
    for i in range(0, len(paths), 400):
        out += subprocess.run([reader, "--dump", *paths[i:i + 400]], check=True, capture_output=True,
                              text=True).stdout.splitlines()
    for line in out:
        word, _, rest = line.partition(" ")
        if word == "REFUSED":
            results.append((None, rest))
        elif word == "OK":
            results.append(({}, {}))
        elif word == "T":
            name, dtype, shape, h = rest.split(" ")
            results[-1][0][unhex(name)] = (dtype, () if shape == "-" else tuple(int(d) for d in shape.split(",")),
                                           int(h, 16))
        elif word == "M":
            key, value = rest.split(" ")
            results[-1][1][unhex(key)] = unhex(value)
    assert len(results) == len(paths), (len(results), len(paths))
    return results

def official(path):
    """The official package's view: None (refused, with the error) or (tensors, metadata); a tensor
    numpy cannot hold (BF16 ...) has None for its bytes' hash."""
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {}
            for name in f.keys():
                info = f.get_slice(name)
                dtype, shape = info.get_dtype(), tuple(info.get_shape())
                try:
                    a = f.get_tensor(name)
                    h = fnv1a64(np.ascontiguousarray(a).tobytes())
                except (TypeError, ValueError, KeyError):
                    h = None
                tensors[name] = (dtype, shape, h)
            return tensors, metadata
    except SafetensorError as e:
        return None, str(e)

def same(ours_view, theirs_view):
    (t1, m1), (t2, m2) = ours_view, theirs_view
    if m1 != m2 or set(t1) != set(t2):
        return False
    return all(t1[n][:2] == t2[n][:2] and (t2[n][2] is None or t1[n][2] == t2[n][2]) for n in t1)

# ---- 1. checkpoint and export through the official package -----------------------------------
for path in (ckpt, export):
    arrays = load_file(path)
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
        keys = set(f.keys())
        check(keys == set(arrays), f"{path}: safe_open and load_file see other names")
        for name in keys:
            check(np.array_equal(f.get_tensor(name), arrays[name]), f"{path}: {name} differs between APIs")
    check(isinstance(meta, dict) and meta and all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in meta.items()),
          f"{path}: metadata is not a non-empty str -> str dict: {meta!r}")
    for name, a in arrays.items():
        if name.endswith("num_batches_tracked"):
            check(a.dtype == np.int64 and a.shape == (), f"{path}: {name} is {a.dtype}{a.shape}, not int64 []")
        else:
            check(a.dtype == np.float32, f"{path}: {name} is {a.dtype}")
            check(np.isfinite(a).all(), f"{path}: {name} has non-finite values")
    view = ours([path])[0]
    check(view[0] is not None, f"{path}: our reader refuses it: {view[1]}")
    theirs = official(path)
    check(view[0] is not None and same(view, theirs), f"{path}: our reader and the official one disagree")
    print(f"{os.path.basename(path)}: {len(arrays)} tensors, metadata keys {sorted(meta)}")

# the export: PyTorch's DCGAN generator at 32x32 (nz 100, ngf 64, nc 1), BN after each but the last
g = load_file(export)
want = {}
for i, (cin, cout) in enumerate([(100, 256), (256, 128), (128, 64), (64, 1)]):
    want[f"main.{3 * i}.weight"] = (cin, cout, 4, 4)
    if i < 3:
        for p in ("weight", "bias", "running_mean", "running_var"):
            want[f"main.{3 * i + 1}.{p}"] = (cout,)
        want[f"main.{3 * i + 1}.num_batches_tracked"] = ()
check(set(g) == set(want), f"export names: extra {sorted(set(g) - set(want))}, missing {sorted(set(want) - set(g))}")
for name, shape in want.items():
    if name in g:
        check(g[name].shape == shape, f"export {name}: shape {g[name].shape}, want {shape}")
check(g["main.0.weight"].dtype == np.float32, "main.0.weight is not float32")
check(int(g["main.1.num_batches_tracked"]) == 3, f"num_batches_tracked {g['main.1.num_batches_tracked']} after 3 steps")
with safe_open(export, framework="numpy") as f:
    meta = f.metadata()
check(meta.get("format") == "pt", f"export metadata format is {meta.get('format')!r}, not 'pt'")

# the export's tensors are the checkpoint's generator tensors (G.<name without the export prefix>)
c = load_file(ckpt)
for name, a in g.items():
    candidates = ["G." + name, "G." + name.split(".", 1)[1]]
    match = [k for k in candidates if k in c]
    check(len(match) == 1, f"export {name}: no checkpoint tensor among {candidates}")
    if match:
        check(c[match[0]].dtype == a.dtype and np.array_equal(c[match[0]], a),
              f"export {name} differs from checkpoint {match[0]}")
with safe_open(ckpt, framework="numpy") as f:
    cmeta = f.metadata()
check(cmeta.get("iteration") in ("3", None), f"checkpoint iteration {cmeta.get('iteration')!r}")

# ---- 2. written by the official package, read by ours ----------------------------------------
rng = np.random.default_rng(7)
tensors = {
    "f32": rng.standard_normal((3, 5)).astype(np.float32),
    "i64": np.array([1, -2, 2**62, -2**63], dtype=np.int64),
    "num_batches_tracked": np.array(42, dtype=np.int64),
    "f32_scalar": np.array(1.5, dtype=np.float32),
    "f64": rng.standard_normal(3),
    "f16": rng.standard_normal((2, 2)).astype(np.float16),
    "i32": np.arange(-3, 4, dtype=np.int32),
    "i16": np.array([-7, 7], dtype=np.int16),
    "i8": np.array([-128, 127, 0], dtype=np.int8),
    "u8": np.arange(5, dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "x": np.ones((1, 1, 1, 1, 2), dtype=np.float32),  # a one-letter name: the header is padded
    "caf\u00e9.w": np.full(2, 3.0, dtype=np.float32),
}
official_meta = {"format": "np", "note": "written by safetensors " + safetensors.__version__,
                 "quote\"and\\back": "tab\tnewline\n\u20ac"}
theirs_path = os.path.join(work, "official.safetensors")
save_file(tensors, theirs_path, metadata=official_meta)
view = ours([theirs_path])[0]
check(view[0] is not None, f"our reader refuses the official writer's file: {view[1]}")
if view[0] is not None:
    want = {n: (ST_OF[a.dtype], a.shape, fnv1a64(np.ascontiguousarray(a).tobytes())) for n, a in tensors.items()}
    check(view[0] == want, f"official file read differently:\n ours   {view[0]}\n wanted {want}")
    check(view[1] == official_meta, f"official file metadata read as {view[1]}")
    print(f"official.safetensors: our reader reads its {len(view[0])} tensors and {len(view[1])} metadata entries")

# ---- 3. differential: mutants of a small valid file, both readers -------------------------------
seed_path = os.path.join(work, "seed.safetensors")
save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3, dtype=np.int64),
           "e": np.zeros((0, 3), dtype=np.float32), "u": np.arange(3, dtype=np.uint8)},
          seed_path, metadata={"format": "pt"})  # one key: the writer's key order is a HashMap's
seed = open(seed_path, "rb").read()
header_len = struct.unpack("<Q", seed[:8])[0]
tokens = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b" ", b"\t", b"0", b"1", b"-1", b"2.0", b"1e2",
          b"-0", b"01", b"1e400", b"9007199254740993", b"18446744073709551615", b"null", b"true",
          b'"F32"', b'"I64"', b'"U16"', b'"BF16"', b'"dtype"', b'"shape"', b'"data_offsets"',
          b'"__metadata__"', b"\\u0000", b"\\u0061", b"\xc3\xa9", b"\xff", b"[0,0]", b"[]", b"{}",
          b'"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},']
rand = random.Random(20240601)
mutants = []
for i in range(5000):
    b = bytearray(seed)
    for _ in range(1 + (rand.randrange(4) if rand.randrange(6) == 0 else 0)):
        hl = struct.unpack("<Q", bytes(b[:8]))[0] if len(b) >= 8 else 0
        in_header = 8 + hl <= len(b) and rand.randrange(5) != 0
        lo, span = (8, hl) if in_header else (0, len(b))
        at = lo + rand.randrange(max(span, 1))
        before = len(b)
        kind = rand.randrange(6)
        if kind == 0 and b:
            b[rand.randrange(len(b))] ^= 1 << rand.randrange(8)
        elif kind == 1 and at < len(b):
            b[at] = rand.choice(b'{}[]",:0129-.eE \\u\x00\t\x7f\x80\xff')
        elif kind == 2:
            b[at:at] = rand.choice(tokens)
        elif kind == 3 and at < len(b):
            n = rand.randrange(1, 12)
            if in_header:
                n = min(n, 8 + hl - at)
            del b[at:at + n]
        elif kind == 4:
            del b[rand.randrange(len(b) + 1):]
            in_header = False
        elif kind == 5 and len(b) >= 8:
            b[:8] = struct.pack("<Q", max(0, hl + rand.randrange(-8, 9)))
            in_header = False
        if in_header and len(b) != before and len(b) >= 8:
            b[:8] = struct.pack("<Q", hl + len(b) - before)
    path = os.path.join(work, f"mutant{i:04d}.safetensors")
    open(path, "wb").write(b)
    mutants.append(path)

ALLOWED = ("appears twice", "unknown dtype", "does not start with '{'", "dimensions (at most", "\\u0000")
counts = {"both read": 0, "both refuse": 0, "we refuse more": 0}
for path, mine in zip(mutants, ours(mutants)):
    theirs = official(path)
    name = os.path.basename(path)
    if mine[0] is not None and theirs[0] is not None:
        counts["both read"] += 1
        check(same(mine, theirs), f"{name}: read differently:\n ours   {mine}\n theirs {theirs}")
    elif mine[0] is None and theirs[0] is None:
        counts["both refuse"] += 1
    elif mine[0] is not None:
        check(False, f"{name}: we read what the official reader refuses ({theirs[1]}): {mine}")
    else:
        big = any(d > 2**53 for t in theirs[0].values() for d in t[1])
        allowed = big or any(a in mine[1] for a in ALLOWED)
        counts["we refuse more"] += 1
        check(allowed, f"{name}: we refuse what the official reader reads: {mine[1]}")
print(f"{len(mutants)} mutants: {counts}")
check(counts["both read"] > 50 and counts["both refuse"] > 1000, "the mutator is broken")

print(f"{len(failures)} failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
PY
echo "1 passed, 0 failed"
