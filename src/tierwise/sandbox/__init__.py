"""The code sandbox: runs untrusted code (model-written Python for the `python_code` verifier,
ensemble script agents) in bubblewrap with a seccomp filter, bounded in CPU, memory, wall time,
output and concurrency. See docs/security/sandbox.md."""

from tierwise.sandbox.backend import INSTALL_HINT, SandboxUnavailable, Status, configure, require, status
from tierwise.sandbox.limits import SandboxLimits, SandboxResult
from tierwise.sandbox.runner import run_python, run_script

__all__ = ["INSTALL_HINT", "SandboxLimits", "SandboxResult", "SandboxUnavailable", "Status", "configure",
           "require", "run_python", "run_script", "status"]
