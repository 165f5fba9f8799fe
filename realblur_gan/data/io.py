"""Reading and writing images of any common mode and bit depth.

:func:`read_image` normalises every file once, to a float32 (C, H, W) tensor in [0, 1] with C = 1
(gray) or 3 (colour), and returns an :class:`ImageInfo` that remembers what the file was: its
colour mode, bit depth and alpha channel. :func:`write_image` uses that record to write a result
back in the input's own mode and bit depth (16-bit gray stays 16-bit gray, alpha passes through).

Bad files raise :class:`ImageReadError` with a one-line message naming the file and the fix.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from realblur_gan.errors import UserError
from realblur_gan.ownership import unique_temp

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderError",
    "ImageInfo",
    "ImageReadError",
    "list_images",
    "read_image",
    "to_channels",
    "write_image",
]

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
)
# ITU-R BT.601 luma, the weights Pillow uses for RGB -> L, so gray conversions agree with it.
_LUMA = (0.299, 0.587, 0.114)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# A warning lists this many skipped entries, then a count.
_LISTED = 10


class ImageReadError(UserError, ValueError):
    """An image file cannot be read; the message names the file and how to fix it."""


class ImageFolderError(UserError, ValueError):
    """An image folder is missing or holds no images; the message names the folder."""


@dataclass
class ImageInfo:
    """What an image file was before :func:`read_image` normalised it.

    Attributes:
        mode: source colour mode in Pillow's names ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK",
            "YCbCr", "I", "F", ...), without the bit depth.
        bit_depth: bits per sample of the source: 1, 8, 16 or 32 (float or 32-bit int).
        channels: colour channels of the source, alpha excluded: 1 (gray) or 3 (colour).
        alpha: the source's alpha channel, or None.
        size: ``(height, width)`` in pixels.
        format: file format ("PNG", "JPEG", "TIFF", "BMP", "WEBP", ...), when known.
        frames: images in the file (an animation's frames, a TIFF's pages); only the first one
            is read.

    Shape:
        - alpha: :math:`(1, H, W)`, float32 in [0, 1].
    """

    mode: str
    bit_depth: int
    channels: int
    alpha: Tensor | None
    size: tuple[int, int]
    format: str | None = None
    frames: int = 1


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _fail(path: Path | str, problem: str, fix: str) -> ImageReadError:
    return ImageReadError(f"{path}: {problem}; {fix}")


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------


def _to_float(array: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    """Scale integer samples to [0, 1] by their type's range; returns (float32 HWC, bit depth)."""
    if array.dtype == np.bool_:
        return array.astype(np.float32), 1
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0, 8
    if array.dtype == np.uint16 or array.dtype == np.dtype(">u2"):
        return array.astype(np.float32) / 65535.0, 16
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(np.nan_to_num(array.astype(np.float32)), 0.0, 1.0), 32
    if np.issubdtype(array.dtype, np.integer):
        # 32-bit gray ("I") files almost always hold 16-bit data; wider values are clipped.
        return np.clip(array.astype(np.float32) / 65535.0, 0.0, 1.0), 16
    raise _fail(path, f"unsupported sample type {array.dtype}", "convert it to 8- or 16-bit")


def _split(hwc: np.ndarray, has_alpha: bool) -> tuple[Tensor, Tensor | None]:
    """HWC float array -> ((C, H, W) colour tensor, (1, H, W) alpha or None)."""
    if hwc.ndim == 2:
        hwc = hwc[:, :, None]
    chw = torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
    if has_alpha:
        return chw[:-1].contiguous(), chw[-1:].contiguous()
    return chw, None


def _decode_png16(data: bytes, path: Path) -> tuple[Tensor, ImageInfo]:
    """16-bit PNGs: Pillow truncates 16-bit colour to 8 bits, torchvision keeps all 16."""
    from torchvision.io import ImageReadMode, decode_png

    try:
        raw = decode_png(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), ImageReadMode.UNCHANGED
        )
    except RuntimeError:
        # torchvision's message is a C++ source location; it carries nothing for the user.
        raise _fail(path, "corrupt or truncated 16-bit PNG", "re-export it") from None
    c = raw.shape[0]
    x = raw.to(torch.int32).float() / 65535.0
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    alpha = x[-1:].contiguous() if c in (2, 4) else None
    colour = x[:-1].contiguous() if alpha is not None else x
    info = ImageInfo(mode, 16, colour.shape[0], alpha, (x.shape[1], x.shape[2]), "PNG")
    return colour, info


def _decode_tiff(data: bytes, path: Path) -> tuple[Tensor, ImageInfo] | None:
    """Decode a TIFF with tifffile (16-bit colour, float); None hands it on to Pillow."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            photometric = int(page.photometric)
            axes = page.axes
            extras = tuple(page.extrasamples or ())
            colormap = page.colormap
            array = page.asarray()
            # Full-resolution pages only: reduced ones are previews of another page.
            frames = sum(not getattr(p, "is_reduced", False) for p in tif.pages)
    except (KeyError, ValueError, NotImplementedError) as err:
        if "imagecodecs" in str(err):
            logger.debug("%s: tifffile lacks a codec (%s), trying Pillow", path, err)
            return None
        raise _fail(path, f"corrupt TIFF ({_one_line(err)})", "re-export it") from None
    except Exception as err:
        raise _fail(path, f"corrupt TIFF ({_one_line(err)})", "re-export it") from None
    # MINISWHITE=0, MINISBLACK=1, RGB=2, PALETTE=3. CMYK, YCbCr, Lab... are left to Pillow.
    if photometric not in (0, 1, 2, 3):
        return None
    if "S" in axes and axes.index("S") < axes.index("Y"):
        array = np.moveaxis(array, axes.index("S"), -1)
    while array.ndim > 3 or (array.ndim == 3 and array.shape[-1] > 8):
        array = array[0]  # further pages, planes or samples beyond colour: keep the first image
    if photometric == 3 and colormap is not None:
        array = np.moveaxis(colormap[:, array], 0, -1)  # the colormap holds 16-bit RGB entries
        extras = ()
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    samples = 1 if array.ndim == 2 else array.shape[-1]
    colour_samples = 1 if photometric in (0, 1) else 3
    if samples < colour_samples:
        return None
    has_alpha = samples > colour_samples and len(extras) > 0
    if samples > colour_samples:
        array = array[..., : colour_samples + (1 if has_alpha else 0)]
    hwc, bits = _to_float(array, path)
    if photometric == 0:
        if has_alpha:
            hwc[..., 0] = 1.0 - hwc[..., 0]
        else:
            hwc = 1.0 - hwc
    colour, alpha = _split(hwc, has_alpha)
    mode = ("L" if colour_samples == 1 else "RGB") + ("A" if has_alpha else "")
    if photometric == 3:
        mode = "P"
    if bits == 32 and np.issubdtype(array.dtype, np.floating):
        mode = "F" if colour_samples == 1 else mode
    info = ImageInfo(mode, bits, colour.shape[0], alpha, tuple(colour.shape[1:]), "TIFF")
    info.frames = max(1, frames)
    return colour, info


def _tiff_needs_codec(data: bytes) -> bool:
    """Whether tifffile can parse the TIFF but lacks the codec to decode its pixels."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            tif.pages[0].asarray()
    except Exception as err:
        return "imagecodecs" in str(err)
    return False


def _decode_pil(data: bytes, path: Path) -> tuple[Tensor, ImageInfo]:
    """Decode anything Pillow reads, forcing a full decode so truncation is caught here."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()
    except UnidentifiedImageError:
        raise _fail(
            path, "not a recognised image", "delete it or convert it to PNG/JPEG/TIFF/BMP/WebP"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _fail(
            path, f"image too large ({_one_line(err)})", "raise PIL.Image.MAX_IMAGE_PIXELS"
        ) from None
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError... when corrupt
        raise _fail(
            path,
            f"truncated or corrupt image data ({_one_line(err)})",
            "re-download or re-export it",
        ) from None
    fmt = img.format
    mode = img.mode
    frames = int(getattr(img, "n_frames", 1) or 1)
    try:
        img = ImageOps.exif_transpose(img) or img  # camera photos store their rotation in EXIF
    except Exception as err:
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", path, _one_line(err))
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("La", "RGBa"):
        img = img.convert(mode.upper())
    elif mode == "1":
        img = img.convert("L")
    elif mode == "RGBX":
        img = img.convert("RGB")
    elif mode.startswith("I;16"):
        pass  # numpy gives uint16 (big- or little-endian) directly
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        try:
            img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV
        except ValueError:
            raise _fail(
                path, f"unsupported image mode {mode}", "convert it to 8/16-bit RGB or gray"
            ) from None
    array = np.asarray(img)
    has_alpha = img.mode in ("LA", "RGBA")
    hwc, bits = _to_float(array, path)
    colour, alpha = _split(hwc, has_alpha)
    if mode == "1":
        bits = 1
    elif mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        bits = 8
    source_mode = {"I;16": "L", "I;16L": "L", "I;16B": "L", "I;16N": "L", "PA": "P"}.get(mode, mode)
    info = ImageInfo(source_mode, bits, colour.shape[0], alpha, tuple(colour.shape[1:]), fmt)
    info.frames = frames
    return colour, info


def read_image(
    path: str | os.PathLike[str], channels: int | None = None
) -> tuple[Tensor, ImageInfo]:
    """Read an image file into a float32 tensor in [0, 1] plus a record of what it was.

    PNG, JPEG, BMP, TIFF, WebP and PNM in 1-, 8- or 16-bit (and float TIFF); gray, RGB, RGBA, LA,
    palette, CMYK and YCbCr. Alpha is split off into ``info.alpha``; palette and CMYK become RGB;
    the EXIF orientation of photos is applied.

    Args:
        path: image file.
        channels: convert the result to 1 (gray) or 3 (RGB) channels; None keeps the source's.

    Returns:
        ``(image, info)``.

    Raises:
        ImageReadError: missing, empty, truncated, corrupt, non-image or unsupported file.

    Shape:
        - image: :math:`(C, H, W)` with C = 1 or 3 (or ``channels``).
    """
    path = Path(path)
    try:
        # Opening a FIFO blocks until a writer appears (forever, and past SIGTERM in a loader).
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise _fail(
                path, f"not a regular file ({_file_kind(mode)})", "remove it or pass a file"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(path, "no such file", "check the path") from None
    except IsADirectoryError:
        raise _fail(path, "is a folder, not an image", "pass an image file") from None
    except OSError as err:
        raise _fail(path, f"cannot be read ({_one_line(err)})", "check its permissions") from None
    if not data:
        raise _fail(path, "file is empty (0 bytes)", "re-copy or delete it")
    result: tuple[Tensor, ImageInfo] | None = None
    is_tiff = data[:4] in _TIFF_MAGICS
    # IHDR bit depth is byte 24 of a PNG; only 16-bit files need torchvision.
    if data.startswith(_PNG_MAGIC) and len(data) > 24 and data[24] == 16:
        result = _decode_png16(data, path)
    elif is_tiff:
        result = _decode_tiff(data, path)
    if result is None:
        try:
            result = _decode_pil(data, path)
        except ImageReadError:
            if is_tiff and _tiff_needs_codec(data):
                raise _fail(
                    path,
                    "TIFF uses a compression or layout that needs the 'imagecodecs' package",
                    "pip install imagecodecs, or re-save it uncompressed",
                ) from None
            raise
    image, info = result
    if channels is not None:
        image = to_channels(image, channels)
    return image, info


# --------------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------------


def to_channels(x: Tensor, channels: int) -> Tensor:
    """Convert between gray and RGB: 1 -> 3 repeats, 3 -> 1 takes BT.601 luma, 4 -> 3 drops alpha.

    Args:
        x: images with 1, 3 or 4 channels.
        channels: 1 or 3.

    Shape:
        - x: :math:`(C, H, W)` or :math:`(B, C, H, W)`
        - output: the same with C = ``channels``.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    dim = x.ndim - 3
    c = x.shape[dim]
    if c == 4:
        x, c = x.narrow(dim, 0, 3), 3
    if c == channels:
        return x
    if c == 1:
        return x.expand(*x.shape[:dim], 3, *x.shape[dim + 1 :]).contiguous()
    if c == 3:
        weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * weights).sum(dim=dim, keepdim=True)
    raise ValueError(f"cannot convert {c} channels to {channels}")


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".ppm": "PPM",
    ".pgm": "PPM",
    ".pnm": "PPM",
}
_NO_ALPHA = frozenset({"JPEG", "PPM"})
_SIXTEEN_BIT = frozenset({"PNG", "TIFF"})


def _png16_bytes(hwc: np.ndarray) -> bytes:
    """Encode a uint16 HWC array as PNG; Pillow cannot write 16-bit colour PNGs."""
    h, w, c = hwc.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = hwc.astype(">u2").reshape(h, w * c).view(np.uint8)
    # Filter type 0 (none) on every row, then zlib: the plain PNG layout any decoder reads.
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return (
        _PNG_MAGIC
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def write_image(
    path: str | os.PathLike[str],
    x: Tensor,
    info: ImageInfo | None = None,
    bit_depth: int | None = None,
    quality: int = 95,
) -> Path:
    """Write an image in [0, 1]; with ``info``, in the mode and bit depth the input had.

    With ``info``: the image is converted back to the source's channel count (gray stays gray),
    the source's alpha is re-attached (resized if the size changed) and its bit depth is kept where
    the format allows (16 bits in PNG and TIFF). Palette and CMYK sources are written as RGB. The
    file is written to a temporary name and renamed, so an interrupted run leaves no partial file.

    Args:
        path: output file; the format follows the extension. Parent folders are created.
        x: image with 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels.
        info: record from :func:`read_image`.
        bit_depth: 8 or 16; overrides ``info``.
        quality: JPEG/WebP quality.

    Returns:
        The written path.

    Shape:
        - x: :math:`(C, H, W)` or :math:`(1, C, H, W)`
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension; use one of {sorted(_FORMATS)}")
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 2, 3, 4):
        raise ValueError(f"{path}: expected a (C, H, W) image with C in 1..4, got {tuple(x.shape)}")
    x = x.detach().float().cpu().clamp(0.0, 1.0)
    alpha: Tensor | None = None
    if x.shape[0] in (2, 4):
        x, alpha = x[:-1], x[-1:]
    if info is not None:
        x = to_channels(x, info.channels)
        if alpha is None and info.alpha is not None:
            alpha = info.alpha.float().cpu()
            if alpha.shape[-2:] != x.shape[-2:]:
                logger.warning("%s: resizing the source alpha to the output size", path)
                alpha = F.interpolate(alpha[None], size=x.shape[-2:], mode="bilinear")[0]
    bits = bit_depth if bit_depth is not None else (16 if info and info.bit_depth > 8 else 8)
    if bits not in (8, 16):
        raise ValueError(f"{path}: bit_depth must be 8 or 16, got {bits}")
    if bits == 16 and fmt not in _SIXTEEN_BIT:
        if bit_depth is not None:
            raise ValueError(f"{path}: {fmt} cannot hold 16 bits; write .png or .tif instead")
        logger.warning("%s: %s holds only 8 bits, the 16-bit source is written as 8-bit", path, fmt)
        bits = 8
    if alpha is not None and fmt in _NO_ALPHA:
        logger.warning("%s: %s has no alpha channel, dropping it", path, fmt)
        alpha = None
    if alpha is not None:
        x = torch.cat([x, alpha.clamp(0.0, 1.0)], dim=0)
    scale = 65535.0 if bits == 16 else 255.0
    dtype = np.uint16 if bits == 16 else np.uint8
    # In place: x is this function's own copy (clamp), and a 12 MP image is 144 MB a copy.
    hwc = x.mul_(scale).round_().permute(1, 2, 0).numpy().astype(dtype)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_temp(path)  # per process: two writers of one target never share it
    try:
        if fmt == "TIFF" and bits == 16:
            import tifffile

            photometric = "minisblack" if hwc.shape[-1] <= 2 else "rgb"
            array = hwc[..., 0] if hwc.shape[-1] == 1 else hwc
            extras = ["unassalpha"] if hwc.shape[-1] in (2, 4) else None
            tifffile.imwrite(
                tmp, array, photometric=photometric, compression="zlib", extrasamples=extras
            )
        elif fmt == "PNG" and bits == 16:
            tmp.write_bytes(_png16_bytes(hwc))
        else:
            from PIL import Image

            mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[hwc.shape[-1]]
            img = Image.fromarray(hwc[..., 0] if mode == "L" else hwc, mode=mode)
            options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
            img.save(tmp, format=fmt, **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------------


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a plain file"


def _regular(path: Path) -> str | None:
    """None for a regular file (or a link to one), else what it is instead."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        return "a broken link" if path.is_symlink() else f"unreadable ({_one_line(err)})"
    return None if stat.S_ISREG(mode) else _file_kind(mode)


def list_images(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """All image files under ``folder``, by extension, sorted by relative path.

    Hidden files and folders (names starting with ".") are skipped, which also skips the
    temporary files of an interrupted :func:`write_image`. So are entries that are not regular
    files (a FIFO would block the reader forever; devices, sockets, broken links), with one
    warning naming them.

    Args:
        folder: folder to scan.
        recursive: also scan sub-folders.

    Raises:
        ImageFolderError: the folder is missing, not a folder, or holds no images.
    """
    root = Path(folder)
    if not root.exists():
        raise ImageFolderError(f"{root}: no such folder; check the path")
    if not root.is_dir():
        raise ImageFolderError(f"{root}: not a folder; pass the folder that holds the images")
    found: list[Path] = []
    odd: list[str] = []
    unreadable: list[OSError] = []
    # os.walk drops folders it cannot list without a word: collect them instead.
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable.append):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")] if recursive else []
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath) / name
            kind = _regular(path)
            if kind is None:
                found.append(path)
            else:
                odd.append(f"{path} ({kind})")
    if odd:
        shown = ", ".join(odd[:_LISTED]) + (
            f" and {len(odd) - _LISTED} more" if len(odd) > _LISTED else ""
        )
        logger.warning(
            "%s: skipped %d entries that are not regular files: %s", root, len(odd), shown
        )
    if unreadable and Path(unreadable[0].filename or "") == root:
        raise ImageFolderError(
            f"{root}: cannot list the folder ({unreadable[0].strerror or unreadable[0]}); "
            "fix its permissions or pass another folder"
        )
    for err in unreadable:
        logger.warning("%s: cannot list this sub-folder (%s), skipped", err.filename, err.strerror)
    if not found:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ImageFolderError(f"{root}: holds no images ({exts}); check the path")
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
