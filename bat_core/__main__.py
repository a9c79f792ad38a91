"""``python -m bat_core`` runs the ``bat`` command line."""

from .cli import main

main()
