"""Entry point for ``python -m audit``."""

from audit.cli.app import main

raise SystemExit(main())
