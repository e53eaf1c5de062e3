"""``python -m qmail`` runs the command line."""

from qmail.cli import main

raise SystemExit(main())
