"""A detector callable for config tests (`tests.escalation.detectors:asks_for_proof`)."""

from tierwise.canonical import Request


def asks_for_proof(req: Request) -> bool:
    return "prove" in req.last_user_text().lower()
