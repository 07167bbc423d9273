"""The live web view of a run: ``surestream run --ui-port N``.

A status page (the pipeline graph with records per second on each edge, counters per
operator and output, watermark and lag per partition, checkpoint history, the latest
error records with their reasons) that updates itself every second, and the JSON API it
reads (``/api/status``, ``/api/operators``, ``/api/partitions``, ``/api/checkpoints``,
``/api/errors``, ``/api/graph``). Everything is read from the run's telemetry snapshot;
the page's assets ship in ``static/`` (docs/metrics.md, "Web view").
"""

from surestream.ops.web.server import serve_web_view

__all__ = ["serve_web_view"]
