#!/usr/bin/env bash
# Makes the seed corpora of tests/fuzz/corpus/<target>/ (committed; run again only to change them):
# valid files of each kind plus a few interesting invalid ones, each a few KB at most.
#   tests/fuzz/make_corpus.sh BUILD_DIR      (BUILD_DIR/gan is used to make checkpoints and caches)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
gan="$(cd "${1:?usage: make_corpus.sh BUILD_DIR}" && pwd)/gan"
corpus="$here/corpus"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf "$corpus"
mkdir -p "$corpus"/{checkpoint,config,npy,idx,cifar,image}

# ---- idx: raw and gzip, 8 gray 4x4 images; a labels file; cut short; one 1x1 image
python3 - "$work" "$corpus/idx" <<'PY'
import gzip, struct, sys
work, out = sys.argv[1], sys.argv[2]
def idx(n, rows, cols, magic=0x803):
    return struct.pack(">IIII", magic, n, rows, cols) + bytes((i * 29 + 7) % 256 for i in range(n * rows * cols))
images = idx(8, 4, 4)
open(f"{work}/tiny-idx3-ubyte", "wb").write(images)
open(f"{out}/tiny-idx3-ubyte", "wb").write(images)
open(f"{out}/tiny-idx3-ubyte.gz", "wb").write(gzip.compress(images, 9, mtime=0))
open(f"{out}/labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, 8) + bytes(range(8)))
open(f"{out}/cut-idx3-ubyte", "wb").write(images[:40])
open(f"{out}/one-idx3-ubyte", "wb").write(idx(1, 1, 1))
open(f"{out}/wide-idx3-ubyte.gz", "wb").write(gzip.compress(idx(2, 3, 200), 9, mtime=0))
PY

# ---- cifar: one and two records; one record and a byte
python3 - "$corpus/cifar" <<'PY'
import sys
out = sys.argv[1]
record = lambda r: bytes([r % 10]) + bytes((p * 7 + r * 31) % 256 for p in range(3072))
open(f"{out}/one_batch.bin", "wb").write(record(0))
open(f"{out}/two_batch.bin", "wb").write(record(1) + record(2))
open(f"{out}/cut_batch.bin", "wb").write(record(3) + b"\x01")
PY

# ---- npy: what gan writes (samples, a prepare cache) and hand-made headers
printf '%s\n' '[model]' 'nz = 4' 'generator = convt(4,2,1,0) bn relu convt(1,3,1,0) tanh' \
  'discriminator = conv(4,3,1,0) bn lrelu(0.2) flatten linear(1,bias) sigmoid' 'export_prefix = main' \
  '[data]' 'path = tiny-idx3-ubyte' 'image_size = 4' 'channels = 1' \
  '[train]' 'iterations = 1' 'batch_size = 4' '[log]' 'every = 1' 'sample_every = 0' 'checkpoint_every = 0' \
  > "$work/tiny.ini"
(cd "$work" && "$gan" train tiny.ini --device cpu --quiet --out run > /dev/null)
ckpt=$(ls "$work"/run/checkpoints/ckpt_*.safetensors | tail -n 1)
"$gan" sample "$ckpt" --n 2 --npy "$corpus/npy/samples_f32.npy" --device cpu > /dev/null
"$gan" prepare "$work/tiny-idx3-ubyte" -o "$corpus/npy/cache_u8.npy" --size 4 --channels 1 > /dev/null
python3 - "$corpus/npy" <<'PY'
import struct, sys
out = sys.argv[1]
def npy(descr, shape, data, major=1, fortran="False"):
    text = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    prefix = 10 if major == 1 else 12
    pad = (64 - (prefix + len(text) + 1) % 64) % 64
    text = (text + " " * pad + "\n").encode()
    size = struct.pack("<H", len(text)) if major == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([major, 0]) + size + text + data
open(f"{out}/v2_f32.npy", "wb").write(npy("<f4", "(2, 3)", struct.pack("<6f", *range(6)), major=2))
open(f"{out}/v3_u8.npy", "wb").write(npy("|u1", "(4,)", bytes(4), major=3))
open(f"{out}/scalar.npy", "wb").write(npy("<f4", "()", struct.pack("<f", 1.5)))
open(f"{out}/fortran.npy", "wb").write(npy("<f4", "(2, 2)", bytes(16), fortran="True"))
open(f"{out}/float64.npy", "wb").write(npy("<f8", "(2,)", bytes(16)))
open(f"{out}/big_endian.npy", "wb").write(npy(">f4", "(2,)", bytes(8)))
open(f"{out}/short_data.npy", "wb").write(npy("<f4", "(100, 100)", bytes(40)))
PY

# ---- checkpoint: a checkpoint of that tiny model; an export (not a checkpoint); one cut short
cp "$ckpt" "$corpus/checkpoint/tiny_checkpoint.safetensors"
"$gan" export "$ckpt" -o "$corpus/checkpoint/tiny_export.safetensors" > /dev/null
head -c 1200 "$ckpt" > "$corpus/checkpoint/cut.safetensors"

# ---- config: the shipped configs, the toy one, and a few that are refused
cp "$src"/configs/*.ini "$src/tests/data/toy_ring.ini" "$corpus/config/"
printf '[model]\nnz = 4\nnoise = normal\nnz = 8\n' > "$corpus/config/duplicate.ini"
printf '[model]\ngenerator = convt(8,4,1,0) bn\n    relu convt(1,4,2,1) tanh\ngenerator = tanh\n' > "$corpus/config/two_generators.ini"
printf '[model]\nnz = 1\0 00\n' > "$corpus/config/nul.ini"
printf 'convt(8,4,1,0) bn relu reshape(2,4,4) flatten linear(3,bias) dropout(0.5) lrelu(0.2) conv(4,3,2,1) sigmoid' \
  > "$corpus/config/layers.txt"

# ---- image: the transform test images up to 9 KB, a cut JPEG, a PNG with a broken CRC
for f in "$src"/tests/data/transform/*.png "$src"/tests/data/transform/*.jpg; do
  [ "$(stat -c %s "$f")" -le 9216 ] && cp "$f" "$corpus/image/"
done
head -c 2000 "$src/tests/data/transform/landscape_151x97.jpg" > "$corpus/image/cut.jpg"
python3 - "$src/tests/data/transform/gray1_31x29.png" "$corpus/image/bad_crc.png" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[29] ^= 0xff  # the IHDR CRC
open(sys.argv[2], "wb").write(b)
PY

du -sh "$corpus"/*
