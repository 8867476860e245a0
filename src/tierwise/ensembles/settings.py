"""The `ensembles:` section of tierwise.yaml: which ensemble files the operator trusts (their scripts run on the
host) and what of the gateway's environment those scripts get (docs/ensembles.md)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnsemblesConfig(_Strict):
    trusted: list[str] = Field(
        default_factory=list, description="ensemble files (paths; relative ones to this config's folder) whose "
        "script agents may run any command on the host; every other ensemble's scripts must be files in its "
        "folder and run in the sandbox. Only the operator edits this list: no MCP tool can add to it")
    script_env: tuple[str, ...] = Field(
        (), description="environment variables (names, or `PREFIX*`) a trusted script gets from the gateway's "
        "environment besides PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ, TMPDIR, TERM, PYTHONPATH, "
        "PYTHONIOENCODING and VIRTUAL_ENV; nothing else reaches it (provider keys included) unless named here")

    @field_validator("script_env")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in v if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\*?", n)]
        if bad:
            raise ValueError(f"not an environment variable name (or NAME_PREFIX*): {bad[0]!r}")
        return v

    def trusted_paths(self, base_dir: str) -> list[Path]:
        return [Path(base_dir) / os.path.expanduser(p) for p in self.trusted]
