"""surestream: stream processing whose first promise is correctness."""
__version__ = "0.1.0"
