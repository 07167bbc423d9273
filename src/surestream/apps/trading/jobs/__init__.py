"""The user code of the five trading jobs (the pipelines themselves are YAML/Python specs)."""
