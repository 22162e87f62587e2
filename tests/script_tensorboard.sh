#!/usr/bin/env bash
# TensorBoard reads what `gan train` writes: train dcgan_fmnist32 for 6 iterations (log every 2,
# samples every 3), read the run directory with TensorBoard's own readers (the EventAccumulator the
# old loader uses, and the plugin accumulator behind the scalars and images dashboards) and check
# every tag, the steps, the values against metrics.jsonl, the framing and CRCs of every record, and
# the sample grid (the PNG file's bytes, decoded). Then resume to 10 iterations: a second events
# file, and the reader sees the steps continue.
# Needs the interop venv (tools/setup.sh: .venv with tensorboard), run as $GAN_VENV_PYTHON.
set -euo pipefail
source "$(dirname "$0")/lib_script.sh"
script_setup script_tensorboard
require_python "$py" tensorboard.backend.event_processing.event_accumulator
require_fmnist

check() { # check RUN_DIR EVENTS_FILES SCALAR_STEPS IMAGE_STEP=PNG_FILE...
  "$py" - "$@" <<'PY'
import glob, json, os, struct, sys, warnings, zlib
warnings.filterwarnings("ignore")
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.compat.proto import event_pb2
from tensorboard.summary.writer.record_writer import masked_crc32c
from tensorboard.util import tensor_util

run, n_files, scalar_steps = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
image_files = {int(a.split("=")[0]): a.split("=")[1] for a in sys.argv[4:]}
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)

# ---- the files: names, framing, CRCs, the first record ------------------------------------------
files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
check(len(files) == n_files, f"{n_files} events files expected, found {files}")
host = os.uname().nodename
events = []
for path in files:
    name = os.path.basename(path)
    stamp, rest = name[len("events.out.tfevents."):].split(".", 1)
    check(len(stamp) == 10 and stamp.isdigit() and (rest == host or rest.startswith(host + ".")),
          f"{name}: not events.out.tfevents.<10-digit seconds>.<hostname {host}>")
    blob = open(path, "rb").read()
    at, records = 0, []
    while at < len(blob):
        if len(blob) - at < 16:
            check(False, f"{name}: {len(blob) - at} trailing bytes at {at}")
            break
        header = blob[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", blob[at + 8:at + 12])
        data = blob[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack("<I", blob[at + 12 + length:at + 16 + length])
        check(header_crc == masked_crc32c(header), f"{name}: length CRC of the record at {at}")
        check(data_crc == masked_crc32c(data), f"{name}: data CRC of the record at {at}")
        records.append(event_pb2.Event.FromString(data))
        at += 16 + length
    check(records and records[0].file_version == "brain.Event:2",
          f"{name}: first record is not file_version brain.Event:2")
    check(all(r.wall_time > 1.6e9 for r in records), f"{name}: a wall_time is not a Unix time")
    events += records[1:]

# ---- scalars: TensorBoard's EventAccumulator against metrics.jsonl --------------------------------
metrics = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
check([m["iteration"] for m in metrics] == scalar_steps,
      f"metrics.jsonl iterations {[m['iteration'] for m in metrics]} != {scalar_steps}")
keys = {"Loss_D": "loss_d", "Loss_G": "loss_g", "D(x)": "d_x", "D(G(z))": "d_g_z1",
        "D(G(z))_after_D_step": "d_g_z2", "img_per_s": "img_per_s", "lr_g": "lr_g", "lr_d": "lr_d"}
image_tag = "samples/fixed_noise"
acc = ea.EventAccumulator(run, size_guidance={k: 0 for k in ea.DEFAULT_SIZE_GUIDANCE})
acc.Reload()
tags = acc.Tags()
check(sorted(tags["scalars"]) == sorted(keys), f"scalar tags {tags['scalars']}")
check(tags["images"] == ([image_tag] if image_files else []), f"image tags {tags['images']}")
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
for tag, key in keys.items():
    if tag not in tags["scalars"]:
        continue
    got = acc.Scalars(tag)
    check([e.step for e in got] == scalar_steps, f"{tag}: steps {[e.step for e in got]} != {scalar_steps}")
    for e, m in zip(got, metrics):
        want = m[key]
        if key == "img_per_s":    # metrics.jsonl rounds it to 0.1
            ok = abs(e.value - want) <= 0.05 + 1e-6 * want
        elif key.startswith("lr"):  # a double in metrics.jsonl, a float in the event
            ok = abs(e.value - want) <= 1e-6 * abs(want)
        else:                        # floats printed with %.9g: exact after rounding to float32
            ok = e.value == f32(want)
        check(ok, f"{tag} at step {e.step}: {e.value!r}, metrics.jsonl says {want!r}")

# ---- images: the PNG file's bytes, a valid PNG of the event's size --------------------------------
def decode_png(png):
    """8-bit RGB, non-interlaced PNG -> (width, height, colour type, rows of bytes); every chunk's
    CRC checked, the IDAT stream inflated and unfiltered."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    at, idat, ihdr = 8, b"", None
    while at < len(png):
        (n,) = struct.unpack(">I", png[at:at + 4])
        kind, body = png[at + 4:at + 8], png[at + 8:at + 8 + n]
        (crc,) = struct.unpack(">I", png[at + 8 + n:at + 12 + n])
        assert crc == zlib.crc32(kind + body), f"chunk {kind} CRC"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
        if kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = ihdr
    assert depth == 8 and colour in (0, 2) and interlace == 0, f"IHDR {ihdr}"
    bpp = 3 if colour == 2 else 1
    raw = zlib.decompress(idat)
    stride = width * bpp
    assert len(raw) == height * (1 + stride), f"IDAT inflates to {len(raw)}, not {height * (1 + stride)}"
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (1 + stride)], bytearray(raw[y * (1 + stride) + 1:(y + 1) * (1 + stride)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if ftype == 1: line[i] = (line[i] + a) & 255
            elif ftype == 2: line[i] = (line[i] + b) & 255
            elif ftype == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            else: assert ftype == 0, f"filter type {ftype}"
        rows.append(bytes(line)); prev = line
    return width, height, colour, rows

images = acc.Images(image_tag) if image_tag in tags["images"] else []
check([e.step for e in images] == sorted(image_files),
      f"image steps {[e.step for e in images]} != {sorted(image_files)}")
raw_images = {e.step: v.image for e in events for v in e.summary.value if v.tag == image_tag}
for e in images:
    png = e.encoded_image_string
    check(png == open(image_files.get(e.step, "/dev/null"), "rb").read(),
          f"image at step {e.step} is not the bytes of {image_files.get(e.step)}")
    check(raw_images[e.step].colorspace == 3, f"image at step {e.step}: colorspace {raw_images[e.step].colorspace}")
    try:
        w, h, colour, rows = decode_png(png)
    except AssertionError as err:
        check(False, f"image at step {e.step}: {err}")
        continue
    check((w, h, colour) == (e.width, e.height, 2), f"PNG {w}x{h} colour {colour}, event {e.width}x{e.height}")
    # 64 Fashion-MNIST samples of 32x32, 8 per row, 2 pixels of black padding: 274x274; gray
    # images repeated to RGB; normalize=True stretches the values to the full 0..255
    check((w, h) == (8 * 34 + 2, 8 * 34 + 2), f"grid {w}x{h}")
    pixels = b"".join(rows)
    check(all(pixels[i] == pixels[i + 1] == pixels[i + 2] for i in range(0, len(pixels), 3)), "gray as RGB")
    check(not any(rows[0]) and not any(rows[1]) and not any(any(r[:6]) for r in rows), "black padding")
    check(min(pixels) == 0 and max(pixels) == 255, f"pixel range {min(pixels)}..{max(pixels)}")
    try:
        import io
        from PIL import Image   # not pinned: the venv usually has it through tensorboard
        check(Image.open(io.BytesIO(png)).convert("RGB").tobytes() == pixels, "PIL decodes other pixels")
    except ImportError:
        pass

# ---- the dashboards' view: the plugin accumulator (scalars and images plugins) --------------------
pacc = pea.EventAccumulator(run, size_guidance={k: 0 for k in pea.DEFAULT_SIZE_GUIDANCE},
                            tensor_size_guidance={"scalars": 0, "images": 0})
pacc.Reload()
def plugin_tags(plugin):
    try:
        return sorted(pacc.PluginTagToContent(plugin))
    except KeyError:  # no tag of that plugin
        return []
check(plugin_tags("scalars") == sorted(keys), f"scalars plugin tags {plugin_tags('scalars')}")
check(plugin_tags("images") == ([image_tag] if image_files else []), f"images plugin tags {plugin_tags('images')}")
loss = [(t.step, float(tensor_util.make_ndarray(t.tensor_proto))) for t in pacc.Tensors("Loss_D")]
check(loss == [(m["iteration"], f32(m["loss_d"])) for m in metrics], f"scalars plugin Loss_D {loss}")
grid = [(t.step, tensor_util.make_ndarray(t.tensor_proto)) for t in pacc.Tensors(image_tag)] if image_files else []
check([(s, a[0], a[1]) for s, a in grid] == [(s, b"274", b"274") for s in sorted(image_files)],
      "images plugin: steps and the [width, height, png] tensor")

print(f"{len(files)} events files, {len(scalar_steps)} steps x {len(keys)} scalars, {len(images)} grids: "
      f"{'ok' if not failures else str(len(failures)) + ' failures'}")
sys.exit(1 if failures else 0)
PY
}

# The toy model's samples are 2-d points, not images: its events hold the scalars only.
"$gan" train "$GAN_SOURCE_DIR/tests/data/toy_ring.ini" train.iterations=4 log.every=2 log.sample_every=2 \
  --device cpu --quiet --out "$work/toy" > "$work/toy.log"
check "$work/toy" 1 2,4

run="$work/run"
"$gan" train "$GAN_SOURCE_DIR/configs/dcgan_fmnist32.ini" train.iterations=6 train.batch_size=16 \
  log.every=2 log.sample_every=3 --device cpu --quiet --out "$run" > "$work/train.log"
# the resumed run rewrites samples/final.png: keep the one of step 6 for the comparison
cp "$run/samples/final.png" "$work/final_step6.png"

s="$run/samples"
check "$run" 1 2,4,6 "3=$s/iter_0000000003.png" "6=$work/final_step6.png"

"$gan" train --resume "$run" train.iterations=10 --device cpu --quiet > "$work/resume.log"
check "$run" 2 2,4,6,8,10 "3=$s/iter_0000000003.png" "6=$work/final_step6.png" "9=$s/iter_0000000009.png" \
  "10=$s/final.png"
echo "1 passed, 0 failed"
