"""The `compression:` section of tierwise.yaml: which routes compress, to what size, how."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RouteCompression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratio: float = Field(4.0, ge=1.0, le=100.0, description="shrink the compressible context to 1/ratio of its "
                         "tokens")
    min_tokens: int = Field(2000, ge=0, description="leave requests with fewer compressible tokens alone")
    method: Literal["extractive", "summary"] = Field(
        "extractive", description="extractive: keep the passages most relevant to the last user turn; summary: "
        "have `summary_model` (a local model or route) summarise the context")
    summary_model: str | None = Field(None, description="model or route that writes the summary (method: summary)")
    embeddings: bool = Field(False, description="mix local-embedding similarity into the passage scores (the "
                             "`embeddings` extra); off: BM25 only")
    keep_last_turns: int = Field(1, ge=0, le=1000, description="messages before the last user turn kept verbatim")
    include_system: bool = Field(False, description="also compress the system prompt")
    include_last_user: bool = Field(False, description="also compress the last user turn (its question is kept "
                                    "as the query)")
    passage_chars: int = Field(600, ge=80, le=20_000, description="size of the passages text is cut into")


class CompressionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: dict[str, RouteCompression] = Field(default_factory=dict, description="routes that compress their "
                                                "context before calling their model; none by default")
