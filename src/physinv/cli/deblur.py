"""``physinv deblur``: deblur your own picture with a known PSF.

``physinv deblur IMAGE --psf PSF -o OUT`` reads a PNG or TIFF (8 or 16 bit,
grey or colour) or an NPY array, restores it with :func:`physinv.deblur.deblur`
and writes ``OUT`` in the input's format and bit depth, at the input's size.
Colour channels are deblurred as one batch and written back as colour.
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write
from ..deblur import BOUNDARIES, METHODS, deblur_with_info
from ..psf import parse_spec

__all__ = ["register", "handle", "read_image", "write_image", "FORMATS"]

#: File extensions ``physinv deblur`` reads and writes.
FORMATS: tuple[str, ...] = (".png", ".tif", ".tiff", ".npy")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _ext(path: str | os.PathLike, name: str) -> str:
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"{name}: unsupported format {ext or '(no extension)'!r} of {os.fspath(path)}; "
                         f"use one of {', '.join(FORMATS)}")
    return ext


def _png_header(path: str | os.PathLike) -> tuple[int, int]:
    """``(bit depth, colour type)`` from the IHDR chunk of a PNG file."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError(f"image: {os.fspath(path)} is not a PNG file")
    return head[24], head[25]


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _read_png16_colour(path: str | os.PathLike) -> np.ndarray:
    """Decode a non-interlaced 16-bit RGB or RGBA PNG (Pillow reads those as 8 bit)."""
    data = Path(path).read_bytes()
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None:
        raise ValueError(f"image: {os.fspath(path)}: PNG without IHDR")
    W, H, depth, ctype, _comp, _filt, interlace = ihdr
    if interlace:
        raise ValueError(f"image: {os.fspath(path)}: interlaced 16-bit colour PNG is not supported; "
                         "save it non-interlaced or as TIFF")
    C = {2: 3, 6: 4}[ctype]
    bpp = 2 * C
    stride = W * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(H, stride + 1)
    out = np.zeros((H, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for r in range(H):
        f, line = raw[r, 0], raw[r, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:  # Sub, Average, Paeth: depend on the pixel to the left, one pixel at a time
            cur = np.zeros(stride, dtype=np.int32)
            for i in range(0, stride, bpp):
                left = cur[i - bpp:i] if i else np.zeros(bpp, dtype=np.int32)
                up = prev[i:i + bpp]
                ul = prev[i - bpp:i] if i else np.zeros(bpp, dtype=np.int32)
                pred = left if f == 1 else (left + up) // 2 if f == 3 else _paeth(left, up, ul)
                cur[i:i + bpp] = (line[i:i + bpp] + pred) & 255
        out[r] = cur
        prev = cur
    return out.astype(np.uint8).reshape(H, W * C, 2).view(">u2").reshape(H, W, C).astype(np.uint16)


def _write_png16_colour(fh: Any, a: np.ndarray) -> None:
    """Encode ``a (H, W, 3 or 4) uint16`` as a 16-bit PNG (filter 0 on every row)."""
    H, W, C = a.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = a.astype(">u2").reshape(H, W * C).view(np.uint8).reshape(H, W * C * 2)
    raw = np.concatenate([np.zeros((H, 1), np.uint8), rows], axis=1).tobytes()
    fh.write(_PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, {3: 2, 4: 6}[C], 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG, TIFF or NPY image as stored: ``(H, W)`` or ``(H, W, C)``, its own dtype.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> write_image(p, np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    >>> read_image(p).dtype, read_image(p).shape
    (dtype('uint16'), (3, 4))
    """
    ext = _ext(path, "image")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image: no such file {os.fspath(path)!r}")
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        depth, ctype = _png_header(path)
        if depth == 16 and ctype in (2, 6):
            return _read_png16_colour(path)
        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                if im.mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                a = np.asarray(im)
        if depth == 16:
            a = a.astype(np.uint16)
        return a
    except (OSError, ValueError, KeyError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"image: cannot read {os.fspath(path)!r}: {e}") from e


def write_image(path: str | os.PathLike, a: np.ndarray) -> None:
    """Write ``a`` (``uint8``, ``uint16`` or float) atomically as PNG, TIFF or NPY by extension.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.tif")
    >>> write_image(p, np.zeros((2, 3, 3), np.uint8))
    >>> read_image(p).shape
    (2, 3, 3)
    """
    ext = _ext(path, "out")
    if ext == ".npy":
        atomic_write(path, lambda f: np.save(f, a, allow_pickle=False))
        return
    if ext in (".tif", ".tiff"):
        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, a, photometric="rgb" if a.ndim == 3 and a.shape[2] in (3, 4) else "minisblack")
        atomic_write(path, lambda f: f.write(buf.getvalue()))
        return
    if a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"out: PNG holds 8- or 16-bit integers, got dtype {a.dtype}")
    if a.dtype == np.uint16 and a.ndim == 3 and a.shape[2] in (3, 4):
        atomic_write(path, lambda f: _write_png16_colour(f, a))
        return
    from PIL import Image

    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype == np.uint16:
        if a.ndim != 2:
            raise ValueError(f"out: 16-bit PNG with {a.shape[2]} channels is not supported; use TIFF")
        im = Image.fromarray(np.ascontiguousarray(a, dtype=np.uint16))
    else:
        im = Image.fromarray(a)
    atomic_write(path, lambda f: im.save(f, format="PNG"))


def _noise(text: str) -> str | float:
    """``type=`` for ``--noise-sigma``: ``auto`` or a finite number > 0."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be auto or a number > 0, got {text}") from None
    if not np.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be auto or a number > 0, got {text}")
    return v


def _psf(text: str) -> str:
    """``type=`` for ``--psf``: an existing kernel file or a spec such as gaussian:2."""
    if os.path.isfile(text):
        return text
    try:
        parse_spec(text)
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _input(text: str) -> str:
    """``type=`` for IMAGE: an existing file of a supported format."""
    if Path(text).suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"unsupported format of {text}; use one of {', '.join(FORMATS)}")
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def _output(text: str) -> str:
    """``type=`` for ``-o``: a file of a supported format in an existing folder."""
    p = Path(text)
    if p.suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"unsupported format of {text}; use one of {', '.join(FORMATS)}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {str(parent)!r} of {text} does not exist")
    return text


def register(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add the ``deblur`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "deblur",
        parents=[common["threads"], common["device"]],
        help="deblur your own image with a known PSF (every parameter from the data)",
        description="Deblur IMAGE (PNG/TIFF 8 or 16 bit, or NPY; grey or colour) blurred by a known PSF "
        "and write OUT in the input's format, bit depth and size. The default method is the best "
        "automatic method measured (see docs/benchmarks.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("image", metavar="IMAGE", type=_input, help="input picture (.png, .tif, .tiff, .npy)")
    p.add_argument("--psf", required=True, type=_psf,
                   help="PSF: a .npy/.png/.tif kernel file or a spec gaussian:SIGMA, motion:LENGTH,ANGLE, "
                   "disk:RADIUS, airy:RADIUS")
    p.add_argument("-o", "--out", required=True, type=_output,
                   help="output file; its extension should match the input's format")
    p.add_argument("--noise-sigma", type=_noise, default="auto",
                   help="noise standard deviation with pixels scaled to [0, 1], or auto (estimated)")
    p.add_argument("--method", choices=tuple(METHODS), default="auto", help="deconvolution method")
    p.add_argument("--boundary", choices=tuple(BOUNDARIES), default="auto",
                   help="model of the scene beyond the frame")
    p.set_defaults(handler=handle)


def _to_dtype(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    if np.issubdtype(like.dtype, np.integer):
        top = float(np.iinfo(like.dtype).max)
        return np.round(np.clip(x, 0.0, 1.0) * top).astype(like.dtype)
    return x.astype(like.dtype)


def handle(args: argparse.Namespace) -> int:
    """Run ``physinv deblur`` from parsed arguments."""
    in_ext, out_ext = Path(args.image).suffix.lower(), Path(args.out).suffix.lower()
    same = {".tif": ".tiff"}.get(in_ext, in_ext) == {".tif": ".tiff"}.get(out_ext, out_ext)
    if not same:
        raise ValueError(f"--out {args.out}: the output keeps the input's format ({in_ext}); "
                         f"use an {in_ext} file name")
    a = read_image(args.image)
    if a.ndim == 3 and a.shape[2] == 4:  # keep alpha as it is, deblur the colour
        colour, alpha = a[..., :3], a[..., 3:]
    else:
        colour, alpha = a, None
    r = deblur_with_info(colour, args.psf, args.noise_sigma, args.method, args.boundary, device=args.device)
    out = _to_dtype(r.image, a)
    if alpha is not None:
        out = np.concatenate([out, alpha], axis=-1)
    write_image(args.out, out)
    info = r.info
    sig = info["noise_sigma"]
    sig_text = ", ".join(f"{s:.4g}" for s in sig) if isinstance(sig, list) else f"{sig:.4g}"
    print(f"noise sigma ({info['noise_sigma_source']}, pixels in [0, 1]): {sig_text}")
    print(f"method: {info['method']}  boundary: {info['boundary']}  rule: {info['rule']}")
    print(f"parameters: {info['params']}")
    print(f"time: {info['seconds']:.3f} s   wrote {args.out} ({out.shape[1]} x {out.shape[0]}, {out.dtype})")
    return 0
