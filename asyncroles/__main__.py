"""``python -m asyncroles`` runs the command line."""

from asyncroles.cli import main

raise SystemExit(main())
