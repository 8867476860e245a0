"""An input count too small for the images and PDF pages sent (usage_bounds.least_binary_input, session 38, costs10).
Since costs9 a count below the text sent at 32 characters a token is billed as tierwise estimates the input; images
and PDFs are not text, and a host reporting 1 input token for a 100-page PDF or for 20 large images was believed.
Now an image counts at least what every provider bills one of its size (at most 64 tokens), a PDF page 128. Honest
counts stand. Real gateway, the anthropic SDK, the Anthropic double as the frontier ($3/$15 per million)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.budgets.frontier_spend import frontier_config, used
from tests.doubles import Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)
from tests.gateway.test_pdf_pages_review37d import doc, packed


def _png(w: int, h: int, shade: int) -> dict:
    b = io.BytesIO()
    Image.new("RGB", (w, h), (shade, 40, 90)).save(b, "PNG")  # (one colour: a few hundred bytes)
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                        "data": base64.b64encode(b.getvalue()).decode()}}


def _spent(g, content: list) -> float:
    ant(g).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": content}])
    return used(g)


def test_one_input_token_for_a_100_page_pdf_is_not_believed(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up, usd=5.0))
    anthropic_up.default = Reply(text="ok", usage=(1, 5))
    spent = _spent(g, [doc(packed(100)), {"type": "text", "text": "sum up"}])
    # Before: $0.000078 (1 token in, 5 out); 100 pages are 25,800+ tokens on Gemini, more on the others
    assert spent > 100 * 128 * 3 / 1e6, f"${spent:.6f} counted for a 100-page PDF"


def test_one_input_token_for_twenty_large_images_is_not_believed(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up, usd=5.0))
    anthropic_up.default = Reply(text="ok", usage=(1, 5))
    spent = _spent(g, [*[_png(1024, 1024, i) for i in range(20)], {"type": "text", "text": "compare"}])
    # Before: $0.000078; each 1024x1024 image is ~1,400 tokens on Anthropic, 765 on GPT-4o, 258+ on Gemini
    assert spent > 20 * 64 * 3 / 1e6, f"${spent:.6f} counted for 20 images of 1024x1024"


@pytest.mark.parametrize(("content", "reported"), [
    ([doc(packed(3)), {"type": "text", "text": "sum up"}], 3 * 258),  # (Gemini's count of 3 pages)
    ([*[_png(100, 100, i) for i in range(10)], {"type": "text", "text": "compare"}], 10 * 13),  # (Anthropic's)
    ([_png(4000, 12, 0), {"type": "text", "text": "read the strip"}], 10),  # (8,000 px wide: scaled to 1568x4)
])
def test_honest_counts_of_small_images_and_pages_are_kept(gateway, openai_up, anthropic_up, content, reported):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up, usd=5.0))
    anthropic_up.default = Reply(text="ok", usage=(reported, 5))
    assert _spent(g, content) == pytest.approx((reported * 3 + 5 * 15) / 1e6, rel=1e-6)
