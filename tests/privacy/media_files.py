"""Real files users send, by their real headers: images written by Pillow, audio and video by the boxes, frames and
magic bytes their specifications give (no encoder for them is installed); and the same with text hidden in them
(metadata, words after a known signature), for the privacy boundary tests (review34d)."""

from __future__ import annotations

import codecs
import io
import json
import struct

from PIL import Image, PngImagePlugin

from tests.privacy.pdfs import make_pdf


def image(fmt: str, **kw: object) -> bytes:
    im = Image.new("RGB", (16, 16), (200, 30, 30))
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def box(kind: bytes, payload: bytes = b"") -> bytes:
    """An ISO-BMFF / QuickTime box."""
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def ftyp(brand: bytes, *compat: bytes) -> bytes:
    return box(b"ftyp", brand + b"\x00\x00\x00\x00" + b"".join(compat or (brand,)))


MP3_FRAMES = (b"\xff\xfb\x90\x64" + bytes(413)) * 4  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no ID3 tag
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
_PDF = make_pdf(["Quarterly plan, nothing sensitive."])

# Passed before review34d too (a regression guard)
PASSED = {
    "webp": lambda: image("WEBP"), "avif": lambda: image("AVIF"), "tiff": lambda: image("TIFF"),
    "bmp": lambda: image("BMP"), "gif87a": lambda: image("GIF"),
    "heic": lambda: ftyp(b"heic", b"mif1", b"heic") + box(b"meta", bytes(40)),
    "svg-prolog": lambda: ('<?xml version="1.0" encoding="UTF-8"?>\n' + SVG).encode(),
    "svg-bom": lambda: codecs.BOM_UTF8 + ('<?xml version="1.0"?>\n' + SVG).encode(),
    "mp4": lambda: ftyp(b"isom", b"isom", b"mp41") + box(b"mdat", bytes(64)),
    "m4a": lambda: ftyp(b"M4A ", b"M4A ", b"mp42") + box(b"mdat", bytes(64)),
    "mov-ftyp": lambda: ftyp(b"qt  ") + box(b"wide") + box(b"mdat", bytes(64)),
    "webm": lambda: b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + bytes(40),
    "ogg-opus": lambda: b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead\x01\x02" + bytes(30),
    "flac": lambda: b"fLaC\x00\x00\x00\x22" + bytes(40),
    "aac-adts": lambda: (b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(9)) * 4,
    "mp3-no-id3": lambda: MP3_FRAMES, "amr": lambda: b"#!AMR\n" + bytes(64),
    "pdf-after-junk": lambda: b"\x00\x01junk before the header\r\n" + _PDF, "pdf-bom": lambda: codecs.BOM_UTF8 + _PDF,
    "utf16-bom": lambda: "Meeting notes, Friday\nAgenda: budget, hiring.\n".encode("utf-16"),
    "csv": lambda: b"id,name,amount\n1,widget,3.50\n2,gadget,12.00\n",
    "json": lambda: json.dumps({"items": [{"id": 1, "name": "widget"}], "total": 2}).encode(),
    "markdown": lambda: b"# Plan\n\n- step one\n- step two\n",
}

# Failed closed as opaque bytes after round 14 (review34d found them)
REFUSED = {
    "jpeg-xl": lambda: b"\xff\x0a\xfa\x7f\x01\x90\x08" + bytes(100),
    "jpeg-xl-container": lambda: b"\x00\x00\x00\x0cJXL \r\n\x87\n" + ftyp(b"jxl ") + box(b"jxlc", b"\xff\x0a" + bytes(50)),
    "jpeg-2000": lambda: image("JPEG2000"), "j2k-codestream": lambda: image("JPEG2000", no_jp2=True),
    "mov-classic": lambda: box(b"wide") + box(b"mdat", bytes(64)) + box(b"moov", bytes(64)),
    "mov-moov-first": lambda: box(b"moov", box(b"mvhd", bytes(100))) + box(b"mdat", bytes(64)),
    "mp4-fragment": lambda: box(b"styp", b"msdh\x00\x00\x00\x00msdh") + box(b"moof", bytes(40)),
    "qoi": lambda: image("QOI"), "ppm": lambda: image("PPM"), "pcx": lambda: image("PCX"), "icns": lambda: image("ICNS"),
    "midi": lambda: b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk" + bytes(30),
    "caf": lambda: b"caff\x00\x01\x00\x00desc" + bytes(40),
    "wma": lambda: bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + bytes(40),
    "flv": lambda: b"FLV\x01\x05\x00\x00\x00\x09" + bytes(40),
    "tiny-csv": lambda: b"a,b\n1,2\n", "tiny-text": lambda: b"ok\n",
}


def png_with_text(key: str, value: str, compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    (info.add_text(key, value, zip=True) if compressed else info.add_text(key, value))
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_artist(value: str) -> bytes:
    exif = Image.Exif()
    exif[0x013B] = value  # Artist
    return image("JPEG", exif=exif.tobytes())


def jpeg_with_xmp(value: str) -> bytes:
    xmp = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           f'<rdf:Description dc:creator="{value}"/></rdf:RDF></x:xmpmeta>').encode()
    return image("JPEG", xmp=xmp)


def mp3_with_comment(value: str) -> bytes:
    text = b"\x00eng\x00" + value.encode("latin-1")
    frame = b"COMM" + struct.pack(">I", len(text)) + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + syncsafe + frame + MP3_FRAMES


def _raw_profile(kind: str, data: bytes) -> str:
    h = data.hex()
    return f"\n{kind}\n{len(data):8d}\n" + "\n".join(h[i:i + 72] for i in range(0, len(h), 72)) + "\n"


def png_as_imagemagick_writes(photo: bytes, xmp_creator: str | None = None) -> bytes:
    """A PNG converted from `photo` the way ImageMagick writes one: its EXIF and ICC profile as hex dumps in `zTXt`
    chunks (`Raw profile type exif/icc`), dates and the software in `tEXt` chunks."""
    im = Image.open(io.BytesIO(photo))
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", _raw_profile("exif", im.info.get("exif", b"")), zip=True)
    info.add_text("Raw profile type icc", _raw_profile("icc", im.info.get("icc_profile", b"")), zip=True)
    if xmp_creator:
        xmp = f'<x:xmpmeta><rdf:Description dc:creator="{xmp_creator}"/></x:xmpmeta>'.encode()
        info.add_text("Raw profile type xmp", _raw_profile("xmp", xmp), zip=True)
    info.add_text("date:create", "2023-05-01T10:11:12+00:00")
    info.add_text("Software", "GIMP 2.10.34")
    out = io.BytesIO()
    im.resize((32, 32)).save(out, "PNG", pnginfo=info)
    return out.getvalue()
