"""``python -m gpux_agent`` runs the same command line as ``gpux-agent``."""

from gpux_agent.cli import main

raise SystemExit(main())
