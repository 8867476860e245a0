"""Build a tiny llama-architecture GGUF model so the engine tests need no downloaded weights.

The model is 2 layers, 64 wide, with a byte-level BPE vocabulary (the 256 GPT-2 byte tokens,
a few merges and the ChatML specials) and a ChatML chat template in Hermes style, so
llama-server recognises `<tool_call>` output and can grammar-constrain tool calls.

Its weights are hand-set so that its replies are known in advance. The transformer blocks get
tiny random weights (they run, but barely move the residual stream), so the next token depends
only on the current one: a bigram table written into the embedding and output matrices.

- after the generation prompt (which ends in a newline) it says `REPLY` and stops;
- after an assistant prefill ending in `INVALID_UTF8_TRIGGER` it emits the byte 0xFF, which
  is not UTF-8, and stops (older llama-server builds answer that with HTTP 500, newer ones
  replace it with U+FFFD);
- when `<|im_end|>` is forbidden after the reply (llama-server's grammar for `tool_choice:
  required` allows text, then demands a tool call) the runner-up is the token `<tool_call>`,
  so the grammar's tool call follows;
- in every other context `<|im_end|>` has the highest logit, then `</tool_call>`, so
  grammar-constrained output (tool calls, JSON schema) ends as soon as the grammar allows it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPLY = "Hey, world!"
INVALID_UTF8_TRIGGER = "~"

EMBEDDING = 64
LAYERS = 2
HEADS = 4
FEED_FORWARD = 128
CONTEXT = 4096

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# A few merges: llama.cpp refuses a "gpt2" tokenizer without any, and they exercise BPE.
MERGES = [("Ġ", "t"), ("Ġ", "a"), ("h", "e"), ("i", "n")]

TOOL_CALL_OPEN = "<tool_call>"  # one plain token, so the reply can turn into a tool call in one step
TOOL_CALL_CLOSE = "</tool_call>"  # one plain token, preferred where a grammar lets a tool call end

# GGUF token types (llama.cpp's llama_token_type).
NORMAL, CONTROL = 1, 3

# Logit scales, before the final RMS norm multiplies them by sqrt(EMBEDDING / 2).
SUCCESSOR_WEIGHT = 10.0  # the bigram successor of a chain token
RUNNER_UP_WEIGHT = 7.0  # <tool_call> after the reply, for when a grammar forbids ending there
END_WEIGHT = 5.0  # <|im_end|> everywhere: beats the zero logits of all other tokens
CLOSE_WEIGHT = 3.0  # </tool_call> everywhere, after <|im_end|>: ends a call rather than adding arguments
LAYER_WEIGHT_STD = 0.01  # small enough that the blocks never change the argmax

CHAT_TEMPLATE = """\
{%- if tools -%}
<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}{% else %}You are a helpful assistant.{% endif %}

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% elif messages[0].role == 'system' -%}
<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' and loop.first -%}
{%- elif message.role == 'user' or message.role == 'system' -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' -%}
<|im_start|>assistant
{%- if message.content %}
{{ message.content }}
{%- endif %}
{%- for tool_call in message.tool_calls or [] %}
{%- set call = tool_call.function if tool_call.function is defined else tool_call %}
<tool_call>
{"name": "{{ call.name }}", "arguments": {{ call.arguments if call.arguments is string else call.arguments | tojson }}}
</tool_call>
{%- endfor %}
{%- if not loop.last %}<|im_end|>
{% endif %}
{%- elif message.role == 'tool' -%}
<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt and messages[-1].role != 'assistant' -%}
<|im_start|>assistant
{% endif -%}
"""


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters, which byte-level BPE vocabularies use."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def vocabulary() -> tuple[list[str], list[int]]:
    """Token texts and types: bytes first (id == byte value), then merges, then ChatML specials."""
    byte_chars = byte_to_unicode()
    tokens = [byte_chars[b] for b in range(256)] + [a + b for a, b in MERGES] + [TOOL_CALL_OPEN, TOOL_CALL_CLOSE]
    types = [NORMAL] * len(tokens)
    tokens += [ENDOFTEXT, IM_START, IM_END]
    types += [CONTROL] * 3
    return tokens, types


def successor_chains(tokens: list[str]) -> dict[int, int]:
    """The bigram table: token id -> the id the model must emit next."""
    byte_chars = byte_to_unicode()
    ids = {text: i for i, text in enumerate(tokens)}
    im_end = ids[IM_END]

    def byte_ids(data: bytes) -> list[int]:
        return [ids[byte_chars[b]] for b in data]

    reply = byte_ids(REPLY.encode())
    if len(set(reply)) != len(reply):
        raise ValueError("REPLY must not repeat a byte: each token has exactly one successor")
    chain = [ids[byte_chars[ord("\n")]], *reply, im_end]
    table = dict(zip(chain, chain[1:], strict=False))
    # llama-server's grammar reads `<tool_call>` as plain text unless a newline follows it.
    table[ids[TOOL_CALL_OPEN]] = chain[0]
    trigger = byte_ids(INVALID_UTF8_TRIGGER.encode())[-1]
    table[trigger] = ids[byte_chars[0xFF]]
    table[ids[byte_chars[0xFF]]] = im_end
    return table


def weights(vocab_size: int, table: dict[int, int], ids: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """All tensors, shaped the way numpy sees them (rows = output features)."""
    rng = np.random.default_rng(seed)
    head_dim = EMBEDDING // HEADS
    # Dimension 0 is on in every token and carries the <|im_end|> default; each token that has a
    # successor owns one more dimension; the rest of the tokens get random directions in what is left.
    sources = sorted(table)
    owned = {token: 1 + i for i, token in enumerate(sources)}
    free_dims = EMBEDDING - 1 - len(sources)
    if free_dims < 8:
        raise ValueError("too many chain tokens for the embedding width")
    embedding = np.zeros((vocab_size, EMBEDDING), dtype=np.float32)
    embedding[:, 0] = 1.0
    for token in range(vocab_size):
        if token in owned:
            embedding[token, owned[token]] = 1.0
        else:
            direction = rng.standard_normal(free_dims)
            embedding[token, 1 + len(sources):] = direction / np.linalg.norm(direction)
    output = np.zeros((vocab_size, EMBEDDING), dtype=np.float32)
    output[ids[IM_END], 0] = END_WEIGHT
    output[ids[TOOL_CALL_CLOSE], 0] = CLOSE_WEIGHT
    for source, target in table.items():
        output[target, owned[source]] = SUCCESSOR_WEIGHT
    reply_end = ids[byte_to_unicode()[REPLY.encode()[-1]]]
    output[ids[TOOL_CALL_OPEN], owned[reply_end]] = RUNNER_UP_WEIGHT

    def small(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * LAYER_WEIGHT_STD).astype(np.float32)

    tensors: dict[str, np.ndarray] = {
        "token_embd.weight": embedding,
        "output_norm.weight": np.ones(EMBEDDING, dtype=np.float32),
        "output.weight": output,
    }
    for layer in range(LAYERS):
        prefix = f"blk.{layer}."
        tensors |= {
            prefix + "attn_norm.weight": np.ones(EMBEDDING, dtype=np.float32),
            prefix + "attn_q.weight": small(HEADS * head_dim, EMBEDDING),
            prefix + "attn_k.weight": small(HEADS * head_dim, EMBEDDING),
            prefix + "attn_v.weight": small(HEADS * head_dim, EMBEDDING),
            prefix + "attn_output.weight": small(EMBEDDING, HEADS * head_dim),
            prefix + "ffn_norm.weight": np.ones(EMBEDDING, dtype=np.float32),
            prefix + "ffn_gate.weight": small(FEED_FORWARD, EMBEDDING),
            prefix + "ffn_up.weight": small(FEED_FORWARD, EMBEDDING),
            prefix + "ffn_down.weight": small(EMBEDDING, FEED_FORWARD),
        }
    return tensors


def write_tiny_model(path: Path, *, seed: int = 0) -> Path:
    """Write the model to `path` and return it. Same seed, same bytes."""
    import gguf  # imported here so that collecting tests works without the optional package

    tokens, types = vocabulary()
    ids = {text: i for i, text in enumerate(tokens)}
    table = successor_chains(tokens)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tierwise-tiny-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBEDDING)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBEDDING // HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([f"{a} {b}" for a, b in MERGES])
    writer.add_bos_token_id(ids[ENDOFTEXT])
    writer.add_eos_token_id(ids[IM_END])
    writer.add_pad_token_id(ids[ENDOFTEXT])
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    for name, tensor in weights(len(tokens), table, ids, seed).items():
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    import sys

    print(write_tiny_model(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny.gguf")))
