"""Writes the hostile-input corpus in tests/data/hostile/ (run once; the files are committed).

python tests/data/make_hostile.py
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

HERE = Path(__file__).parent / "hostile"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0))


def digit(size: int = 120) -> Image.Image:
    """A plain '1': a dark bar on white paper."""
    pixels = np.full((size, size), 255, np.uint8)
    pixels[size // 6 : size - size // 6, size // 2 - size // 16 : size // 2 + size // 16] = 0
    return Image.fromarray(pixels)


def bomb_png(side: int) -> bytes:
    """A valid PNG of side x side black pixels: a few kB compressed, huge decoded."""
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return png_header(side, side) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def many_frames_gif(frames: int) -> bytes:
    images = [digit(16).point(lambda v, i=i: (v + i) % 256) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=10)


def corpus() -> dict[str, bytes]:
    png = encode(digit(), "PNG")
    jpeg = encode(digit().convert("RGB"), "JPEG", quality=90)
    gif = encode(digit(), "GIF")
    big_icc = PngImagePlugin.PngInfo()
    big_icc.add_text("comment", "x" * 200_000)
    exif = Image.Exif()
    exif[0x010E] = "A" * 60_000  # ImageDescription
    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w") as archive:
        archive.writestr("digit.txt", "7")
    noise = np.random.default_rng(7).integers(0, 256, (128, 128), dtype=np.uint8)
    return {
        "empty.png": b"",
        "one-byte.png": b"\x89",
        "png-signature-only.png": b"\x89PNG\r\n\x1a\n",
        "truncated-half.png": png[: len(png) // 2],
        "truncated-header.png": png[:20],
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "truncated.gif": gif[: len(gif) // 2],
        "bad-crc-ihdr.png": png[:29] + bytes([png[29] ^ 0xFF]) + png[30:],
        "bad-crc-idat.png": png[:-20] + bytes([png[-20] ^ 0xFF]) + png[-19:],
        "bomb-9000x9000.png": bomb_png(9000),
        "header-100000x100000.png": png_header(100_000, 100_000) + chunk(b"IEND", b""),
        "header-30000x30000.png": png_header(30_000, 30_000) + chunk(b"IEND", b""),
        "zero-width.png": png_header(0, 10) + chunk(b"IEND", b""),
        "animated-1000-frames.gif": many_frames_gif(1000),
        "multipage.tiff": encode(digit(48), "TIFF", save_all=True, append_images=[digit(48)] * 20),
        "16-bit.png": encode(Image.fromarray(np.asarray(digit(), np.uint16) * 257), "PNG"),
        "1-bit.png": encode(digit().convert("1"), "PNG"),
        "cmyk.jpg": encode(digit().convert("CMYK"), "JPEG"),
        "progressive.jpg": encode(digit().convert("RGB"), "JPEG", progressive=True),
        "huge-text-chunk.png": encode(digit(), "PNG", pnginfo=big_icc),
        "huge-exif.jpg": encode(digit().convert("RGB"), "JPEG", exif=exif.tobytes()),
        "palette-transparent.png": encode(digit().convert("P"), "PNG", transparency=255),
        "greyscale-alpha.png": encode(digit().convert("LA"), "PNG"),
        "bmp.bmp": encode(digit(), "BMP"),
        "webp.webp": encode(digit(), "WEBP"),
        "tiny-1x1.png": encode(Image.new("L", (1, 1), 0), "PNG"),
        "all-white.png": encode(Image.new("L", (200, 200), 255), "PNG"),
        "all-black.png": encode(Image.new("L", (200, 200), 0), "PNG"),
        "all-transparent.png": encode(Image.new("RGBA", (200, 200), (0, 0, 0, 0)), "PNG"),
        "mid-grey.jpg": encode(Image.new("RGB", (200, 200), (128, 128, 128)), "JPEG"),
        "pure-noise.png": encode(Image.fromarray(noise), "PNG"),
        "svg.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        "svg-named.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        "html-named.png": b"<!doctype html><html><body><script>alert(1)</script></body></html>",
        "zip-named.png": zip_buffer.getvalue(),
        "pdf-named.png": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        "psd-named.png": b"8BPS\x00\x01" + b"\x00" * 64,
        "eps-named.png": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        "polyglot-png-zip.png": png + zip_buffer.getvalue(),
        "text.png": b"this is not an image at all\n",
        "elf-named.png": b"\x7fELF\x02\x01\x01" + b"\x00" * 60,
        "ico.ico": encode(digit(32), "ICO"),
    }


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, data in corpus().items():
        (HERE / name).write_bytes(data)
    print(f"wrote {len(corpus())} files to {HERE}")


if __name__ == "__main__":
    main()
