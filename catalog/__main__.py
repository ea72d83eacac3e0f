"""`python -m catalog` runs the command-line interface."""

from catalog.cli import main

main()
