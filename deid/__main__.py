"""``python -m deid`` runs the command line."""

from deid.cli import main

main()
