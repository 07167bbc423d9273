"""The stock-trading reference application (simulator, jobs, analytics)."""
