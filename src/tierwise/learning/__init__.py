"""The learning loop: which answers to judge (schedule), where the local/frontier boundary lies per
task type (boundary), task triage, feedback, and the flywheel exports built from the evidence."""
