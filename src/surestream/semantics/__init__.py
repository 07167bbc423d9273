"""Semantics layer: the engine-neutral logic of each operator (SEMANTICS.md)."""
