"""image_size.py reads an inline image's size from its header (for the input floor, usage_bounds.least_binary_input):
the four formats the providers take, data: URLs, and hostile JPEGs bounded (a run of fill bytes is one step; past
`_SEGMENTS` segments before the frame header, the size is unknown and the image counts no floor)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tierwise.image_size import image_size


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "JPEG", "WEBP"])
@pytest.mark.parametrize("size", [(1, 1), (300, 200), (4000, 3000)])
def test_sizes_of_the_four_formats(fmt, size):
    b = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(b, fmt)
    assert image_size(_b64(b.getvalue())) == size
    assert image_size(f"data:image/{fmt.lower()};base64,{_b64(b.getvalue())}") == size


def test_a_jpeg_frame_after_long_metadata_and_fill_bytes():
    b = io.BytesIO()
    Image.new("RGB", (640, 480)).save(b, "JPEG", exif=b"Exif\x00\x00" + b"x" * 60_000)
    raw = b.getvalue()
    assert image_size(_b64(raw)) == (640, 480)
    assert image_size(_b64(raw[:2] + b"\xff" * 5_000 + raw[2:])) == (640, 480)  # (fill before a marker)


def test_a_jpeg_of_endless_segments_is_not_read_to_its_end():
    sof = b"\xff\xc0\x00\x11\x08\x01\xe0\x02\x80\x03" + b"\x00" * 9  # 640x480
    assert image_size(_b64(b"\xff\xd8" + sof)) == (640, 480)
    assert image_size(_b64(b"\xff\xd8" + b"\xff\xe1\x00\x02" * 300 + sof)) is None


@pytest.mark.parametrize("data", ["", "!!!!", "/9j/", _b64(b"\xff\xd8\xff"), _b64(b"\x89PNG\r\n\x1a\n")])
def test_broken_or_short_headers_are_unknown(data):
    assert image_size(data) is None
