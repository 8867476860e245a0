"""What a run produced, per agent and in total: the shape of artifacts, MCP answers and ledger rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tierwise.secret_scrub import scrub

AgentStatus = Literal["ok", "partial", "failed", "timeout", "skipped", "cancelled"]


@dataclass(slots=True)
class CallOutcome:
    """One finished model call, as the executor needs it."""

    text: str
    model: str | None = None  # upstream model id
    deployment: str | None = None  # config model name that answered
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class ItemResult:
    """One element of a fan-out: its own status, in the order of the upstream array."""

    index: int
    status: AgentStatus
    output: Any = None
    error: str | None = None
    latency_ms: float = 0.0
    raw_output: str | None = None  # the answer rejected (not JSON, or not matching the schema)


@dataclass(slots=True)
class AgentResult:
    name: str
    kind: str
    status: AgentStatus = "skipped"
    output: Any = None
    error: str | None = None
    profile: str | None = None
    model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    cost_unknown: bool = False  # some call had no known price: cost_usd is then None, not a partial sum
    latency_ms: float = 0.0
    # Seconds since the run started: when the agent began work and finished (for overlap checks).
    started_s: float | None = None
    ended_s: float | None = None
    fallback_used: str | None = None
    items: list[ItemResult] | None = None
    nested: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    # A failed agent's rejected answer as the model (or script) gave it: not JSON, or not matching
    # `output_schema`. Kept so the artifact shows what went wrong, not only that it did.
    raw_output: str | None = None

    def add_cost(self, c: float | None) -> None:
        """Count one call's cost; None (no known price) makes the agent's cost unknown for good."""
        if c is None:
            self.cost_unknown, self.cost_usd = True, None
        elif not self.cost_unknown:
            self.cost_usd = (self.cost_usd or 0.0) + c

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Agent errors are free text from anywhere (a script's stderr, an exception's message):
        # they leave through MCP, the CLI and artifacts, so the gateway's secrets come out here.
        if d["error"]:
            d["error"] = scrub(d["error"])
        for item in d["items"] or ():
            if item["error"]:
                item["error"] = scrub(item["error"])
        return d


@dataclass(slots=True)
class RunResult:
    run_id: str
    ensemble: str
    status: Literal["ok", "partial", "failed", "cancelled"]
    output: Any
    agents: list[AgentResult]
    started_at: float  # unix seconds
    latency_ms: float
    input: Any = None
    final_agent: str = ""
    artifact_json: str | None = None
    artifact_md: str | None = None

    def agent(self, name: str) -> AgentResult:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(name)

    def totals(self) -> dict[str, Any]:
        costs = [a.cost_usd for a in self.agents if a.cost_usd is not None]
        unknown = [a.name for a in self.agents if a.cost_unknown]
        return {
            "agents": len(self.agents),
            "ok": sum(a.status == "ok" for a in self.agents),
            "failed": sum(a.status in ("failed", "timeout", "partial") for a in self.agents),
            "skipped": sum(a.status == "skipped" for a in self.agents),
            "input_tokens": sum(a.input_tokens for a in self.agents),
            "output_tokens": sum(a.output_tokens for a in self.agents),
            # Unknown when any agent called a model without a known price (never shown as $0).
            "cost_usd": None if unknown else (sum(costs) if costs else 0.0),
            "cost_unknown_agents": unknown,
            "latency_ms": self.latency_ms,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ensemble": self.ensemble,
            "status": self.status,
            "final_agent": self.final_agent,
            "input": self.input,
            "output": self.output,
            "started_at": self.started_at,
            "latency_ms": self.latency_ms,
            "totals": self.totals(),
            "agents": [a.to_dict() for a in self.agents],
        }
