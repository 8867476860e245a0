"""Runs `serve_stdio` with a build that waits for a gate file: the test opens the gate only after it
has its handshake answers, so they can only have come before the SDK and the gateway loaded."""

import sys
import time
from pathlib import Path

from tierwise.mcp_fast import serve_stdio


def main() -> None:
    gate, project = Path(sys.argv[1]), sys.argv[2]
    imported_early = "mcp" in sys.modules

    def build():
        while not gate.exists():
            time.sleep(0.01)
        from tierwise.commands._common import load_or_exit
        from tierwise.commands.mcp import _server, _service

        cfg = load_or_exit(str(Path(project) / "tierwise.yaml"), allow_starter=True)
        return _server(_service(cfg, project))

    print(f"driver: mcp imported before serving: {imported_early}", file=sys.stderr)
    serve_stdio(build)


main()
