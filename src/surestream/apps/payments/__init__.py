"""Exactly-once payments: a simulator with its truth, the processor's template and fraud
code, reconciliation, and the demo (docs/payments.md)."""
