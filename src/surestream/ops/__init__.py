"""Operations: what a person watching a run sees -- its progress, its summary tables.

This package sits between the runners and the applications (DESIGN.md, ``ops/``): it
reads what a runner reports (``Progress``, ``RunResult``) and shows it, so the command
line and the applications' demos share one display without an application importing the
command line. ``ops/report`` makes the HTML report of a run from its checkpoint folder.
"""
