"""`python -m tierwise`: the same command as `tierwise`, for a venv whose scripts are not on PATH."""

from tierwise.cli import main

main(prog_name="tierwise")
