"""Knowledge of particular clients (how to recognise what a client's requests are for)."""
