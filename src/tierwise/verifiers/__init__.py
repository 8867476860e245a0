"""Verifiers: small async checks that decide whether a model's answer is good enough.

Policies (cascade, draft-and-verify) call them; see `base` for the interface and `specs`
for configuration. Concrete verifiers live one family per module.
"""

from tierwise.verifiers.base import (
    EmbedFn,
    JudgeFn,
    SampleFn,
    Verdict,
    Verifier,
    VerifierChain,
    VerifierError,
    VerifyContext,
)
from tierwise.verifiers.specs import VERIFIER_TYPES, VerifierSpec, build_chain, build_verifier, parse_spec

__all__ = [
    "EmbedFn",
    "JudgeFn",
    "SampleFn",
    "VERIFIER_TYPES",
    "Verdict",
    "Verifier",
    "VerifierChain",
    "VerifierError",
    "VerifierSpec",
    "VerifyContext",
    "build_chain",
    "build_verifier",
    "parse_spec",
]
