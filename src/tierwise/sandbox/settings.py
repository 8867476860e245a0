"""The `sandbox:` section of tierwise.yaml: how untrusted code (python_code verifiers, ensemble script agents)
runs — the weak fallback, the unprivileged user outside the sandbox, a uid per run, limits (docs/security/sandbox.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SandboxConfig(_Strict):
    """The code sandbox (tierwise.sandbox) that `python_code` verifiers and script agents run in."""

    allow_weak: bool = Field(False, description="where bubblewrap or user namespaces are missing, run code in the "
                             "weak sandbox (rlimits, seccomp, an audit hook; the host hidden by a mount namespace or "
                             "Landlock, refused where neither is available) instead of refusing to start")
    max_concurrent: int | None = Field(None, ge=1, le=1024, description="sandbox runs at once (default: CPU cores)")
    max_waiting: int = Field(64, ge=0, le=100_000, description="runs that may wait for a slot; more are 'sandbox busy'")
    wait_s: float = Field(30.0, ge=0, le=3600, description="seconds a run waits for a slot before 'sandbox busy'")
    run_as: int | str = Field(65534, description="when the gateway runs as root: the unprivileged user (uid or "
                              "name) the sandboxed code runs as outside its sandbox (never root); a gateway that "
                              "is not root runs it as itself")
    allow_root_outside: bool = Field(False, description="when the gateway runs as root but cannot switch its "
                                     "sandboxed code to `run_as` (a container without CAP_SYS_ADMIN): run the code as "
                                     "root outside its sandbox anyway, instead of refusing to start")
    run_as_range: str | None = Field(None, description="when the gateway runs as root: uids 'FIRST-LAST' (e.g. "
                                     "'61184-61439', none of them a real user's) from which each run in progress "
                                     "gets one of its own instead of sharing `run_as`, so the kernel keeps "
                                     "concurrent runs from each other's files, memory and signals; at least "
                                     "`max_concurrent` uids")

    @field_validator("run_as_range")
    @classmethod
    def _a_range(cls, value: str | None) -> str | None:
        if value is not None:
            from tierwise.sandbox.identity import parse_range

            parse_range(value)
        return value

    @field_validator("run_as")
    @classmethod
    def _not_root(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 < value < 2**32 - 1:  # 4294967295: setresuid's "unchanged"
            raise ValueError("sandbox.run_as must be an unprivileged user (a uid from 1 to 4294967294, or a user "
                             "name)")
        if isinstance(value, str) and (not value or value == "root"):
            raise ValueError("sandbox.run_as must be an unprivileged user name, not root")
        return value
