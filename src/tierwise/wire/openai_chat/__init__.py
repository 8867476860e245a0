"""OpenAI Chat Completions wire format (`POST /v1/chat/completions`), both directions, whole bodies and streams.

This package is the codec the gateway hands around (`codec.decode_request(...)`); its parts:

- `request_decode`: a client's request → canonical Request (validation: clear 400s naming the field).
- `request_encode`: canonical Request → an upstream's request.
- `response`: whole chat completions both ways (`decode_response` from an upstream, `encode_response`
  for a client), error bodies, and the API's vocabulary (`FORMAT`, finish reasons, error types).
- `stream`: SSE streams both ways (`StreamDecoder` from an upstream, `StreamEncoder` for a client).
"""

from tierwise.wire.openai_chat.request_decode import KNOWN_FIELDS, decode_request
from tierwise.wire.openai_chat.request_encode import encode_request
from tierwise.wire.openai_chat.response import FORMAT, decode_response, encode_error, encode_response
from tierwise.wire.openai_chat.stream import StreamDecoder, StreamEncoder

__all__ = ["FORMAT", "KNOWN_FIELDS", "StreamDecoder", "StreamEncoder", "decode_request", "decode_response",
           "encode_error", "encode_request", "encode_response"]
