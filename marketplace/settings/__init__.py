"""Settings modules: ``base`` (env-driven, used everywhere) and ``test`` (prefers local servers)."""
