"""Anthropic Messages wire format (`POST /v1/messages`), both directions, whole bodies and streams.

This package is the codec the gateway hands around (`codec.decode_request(...)`); its parts:

- `request_decode`: a client's request → canonical Request (validation: clear 400s naming the field).
- `request_encode`: canonical Request → an upstream's request (forwarded as sent when the client
  spoke Anthropic, otherwise translated from an OpenAI client's request).
- `response`: whole messages both ways (`decode_response` from an upstream, `encode_response`
  for a client), error bodies, and the API's vocabulary (`FORMAT`, stop reasons, error types).
- `stream`: SSE streams both ways (`StreamDecoder` from an upstream, `StreamEncoder` for a client).
"""

from tierwise.wire.anthropic_messages.request_decode import KNOWN_FIELDS, decode_request
from tierwise.wire.anthropic_messages.request_encode import encode_request
from tierwise.wire.anthropic_messages.response import FORMAT, decode_response, encode_error, encode_response
from tierwise.wire.anthropic_messages.stream import StreamDecoder, StreamEncoder

__all__ = ["FORMAT", "KNOWN_FIELDS", "StreamDecoder", "StreamEncoder", "decode_request", "decode_response",
           "encode_error", "encode_request", "encode_response"]
