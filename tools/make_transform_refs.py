#!/usr/bin/python3
"""Reference outputs of torchvision's Resize(S) + CenterCrop(S) for tests/test_data_transform.c.

Writes tests/data/transform/: small test images (JPEG and PNG; portrait and landscape, smaller and
larger than S, gray, palette with transparency, RGBA, gray+alpha, CMYK, progressive, 1/4/16-bit) and,
for each (image, S, channels) case, the expected uint8 output as .npy ([S, S] for one channel,
[S, S, 3] for three), plus manifest.txt listing the cases. The C test decodes each image with our
decoder, transforms it and requires max |ours - PIL| <= 1.

The expected outputs are what a torchvision pipeline gives:
    Image.open(f).convert('RGB' or 'L') -> Resize(S) -> CenterCrop(S)
computed here with PIL directly (torchvision is not needed): Resize is PIL's
image.resize((w, h), Image.BILINEAR) (reducing_gap None) to the size torchvision computes (shorter
side S, longer int(S * long / short)), skipped when the size does not change; CenterCrop's offsets
are int(round((size - S) / 2.0)). One deliberate difference: 16-bit gray images are scaled to 8 bits
(value >> 8) before the pipeline, where PIL's convert() clips them to 255.

Run with an interpreter that has Pillow and NumPy (Debian: /usr/bin/python3 with python3-pil):
    /usr/bin/python3 tools/make_transform_refs.py
The outputs are committed, so the test needs neither PIL nor Python.
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "transform")


def pattern(w, h, seed, channels=3):
    """Smooth gradients, stripes of several frequencies, a checkerboard and a noisy patch: detail for
    the filters to get wrong, yet small once compressed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        f = 0.15 + 0.1 * c + 0.05 * seed
        v = 128 + 60 * np.sin(x * f + c) * np.cos(y * f * 0.7) + 50 * (x / w - y / h)
        v += np.where(((x // 3 + y // 3) % 2) == 0, 25, -25) * (x > w * 0.6)
        planes.append(v)
    img = np.stack(planes, axis=-1)
    ph, pw = max(1, h // 5), max(1, w // 5)
    img[h // 3:h // 3 + ph, w // 4:w // 4 + pw] += rng.normal(0, 40, (ph, pw, channels))
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img if channels > 1 else img[:, :, 0]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png_raw(path, rows, width, height, bit_depth, color_type):
    """A PNG from already packed rows (PIL cannot write 16-bit RGB or 4-bit gray)."""
    raw = b"".join(b"\x00" + row for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9))
                + png_chunk(b"IEND", b""))


def resize_center_crop(im, size):
    """torchvision.transforms.Resize(size) then CenterCrop(size) on a PIL image."""
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.BILINEAR)
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    return im.crop((left, top, left + size, top + size))


def load_as(path, channels):
    """What torchvision's loader gives: Image.open(f).convert('RGB' / 'L'); 16-bit gray scaled."""
    im = Image.open(path)
    if im.mode in ("I", "I;16", "I;16B"):
        arr = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
        im = Image.fromarray(arr, "L")
    return im.convert("RGB" if channels == 3 else "L")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    inputs = {}

    def save(name, im, **kw):
        im.save(os.path.join(OUT, name), **kw)
        inputs[name] = True

    # JPEG
    save("celeba_like_178x218.jpg", Image.fromarray(pattern(178, 218, 1)), quality=90)
    save("landscape_151x97.jpg", Image.fromarray(pattern(151, 97, 2)), quality=85)
    save("small_portrait_23x41.jpg", Image.fromarray(pattern(23, 41, 3)), quality=95)
    save("gray_90x70.jpg", Image.fromarray(pattern(90, 70, 4, 1), "L"), quality=90)
    save("cmyk_60x50.jpg", Image.fromarray(np.concatenate([pattern(60, 50, 5), pattern(60, 50, 6, 1)[..., None] // 3],
                                                          axis=-1), "CMYK"), quality=90)
    save("progressive_120x80.jpg", Image.fromarray(pattern(120, 80, 7)), quality=80, progressive=True)
    # PNG
    save("rgb_100x37.png", Image.fromarray(pattern(100, 37, 8)))
    save("gray_45x61.png", Image.fromarray(pattern(45, 61, 9, 1), "L"))
    save("fmnist_like_28x28.png", Image.fromarray(pattern(28, 28, 10, 1), "L"))
    pal = Image.fromarray(pattern(57, 33, 11)).quantize(colors=40)
    save("palette_trns_57x33.png", pal, transparency=3)
    rgba = np.concatenate([pattern(70, 90, 12), pattern(70, 90, 13, 1)[..., None]], axis=-1)
    save("rgba_70x90.png", Image.fromarray(rgba, "RGBA"))
    la = np.stack([pattern(40, 30, 14, 1), 255 - pattern(40, 30, 15, 1)], axis=-1)
    save("gray_alpha_40x30.png", Image.fromarray(la, "LA"))
    g16 = (pattern(50, 40, 16, 1).astype(np.uint16) * 257 + np.arange(50, dtype=np.uint16)[None, :] * 5)
    save("gray16_50x40.png", Image.fromarray(g16.astype(np.uint16), "I;16"))
    rgb16 = pattern(33, 47, 17).astype(np.uint16) * 256 + (np.arange(33, dtype=np.uint16)[None, :, None] * 7)
    write_png_raw(os.path.join(OUT, "rgb16_33x47.png"), [row.astype(">u2").tobytes() for row in rgb16], 33, 47, 16, 2)
    inputs["rgb16_33x47.png"] = True
    g4 = pattern(26, 19, 18, 1) >> 4
    write_png_raw(os.path.join(OUT, "gray4_26x19.png"),
                  [bytes((int(r[i]) << 4) | (int(r[i + 1]) if i + 1 < len(r) else 0) for i in range(0, len(r), 2))
                   for r in g4], 26, 19, 4, 0)
    inputs["gray4_26x19.png"] = True
    save("gray1_31x29.png", Image.fromarray(pattern(31, 29, 19, 1) > 128).convert("1"))
    save("cifar_like_32x32.png", Image.fromarray(pattern(32, 32, 20)))
    save("near_square_100x103.png", Image.fromarray(pattern(100, 103, 21)))

    # sanity: what PIL makes of the hand-written PNGs
    assert np.array_equal(np.asarray(Image.open(os.path.join(OUT, "rgb16_33x47.png"))), (rgb16 >> 8).astype(np.uint8))
    assert np.array_equal(np.asarray(Image.open(os.path.join(OUT, "gray4_26x19.png"))), (g4 * 17).astype(np.uint8))

    cases = [
        ("celeba_like_178x218.jpg", 64, 3), ("celeba_like_178x218.jpg", 64, 1), ("celeba_like_178x218.jpg", 32, 3),
        ("landscape_151x97.jpg", 64, 3), ("landscape_151x97.jpg", 37, 3),
        ("small_portrait_23x41.jpg", 64, 3), ("small_portrait_23x41.jpg", 30, 1),
        ("gray_90x70.jpg", 48, 1), ("gray_90x70.jpg", 48, 3),
        ("cmyk_60x50.jpg", 32, 3), ("cmyk_60x50.jpg", 32, 1),
        ("progressive_120x80.jpg", 40, 3),
        ("rgb_100x37.png", 32, 3), ("rgb_100x37.png", 50, 1),
        ("gray_45x61.png", 32, 1),
        ("fmnist_like_28x28.png", 32, 1), ("fmnist_like_28x28.png", 28, 1), ("fmnist_like_28x28.png", 32, 3),
        ("palette_trns_57x33.png", 32, 3), ("palette_trns_57x33.png", 32, 1),
        ("rgba_70x90.png", 64, 3),
        ("gray_alpha_40x30.png", 24, 3),
        ("gray16_50x40.png", 32, 1),
        ("rgb16_33x47.png", 32, 3),
        ("gray4_26x19.png", 16, 1),
        ("gray1_31x29.png", 16, 1),
        ("cifar_like_32x32.png", 32, 3), ("cifar_like_32x32.png", 64, 3),
        ("near_square_100x103.png", 64, 3),
    ]
    lines = ["# input size channels expected  (made by tools/make_transform_refs.py with Pillow %s)"
             % Image.__version__]
    for name, size, channels in cases:
        out = np.asarray(resize_center_crop(load_as(os.path.join(OUT, name), channels), size), dtype=np.uint8)
        assert out.shape == ((size, size, 3) if channels == 3 else (size, size)), (name, out.shape)
        expected = "%s_s%d_c%d.npy" % (os.path.splitext(name)[0], size, channels)
        np.save(os.path.join(OUT, expected), np.ascontiguousarray(out))
        lines.append("%s %d %d %s" % (name, size, channels, expected))
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %d cases, %d files, %d bytes to %s" % (len(cases), len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    sys.exit(main())
