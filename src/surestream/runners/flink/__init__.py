"""The Flink runner (issue 15): the spec translated to Flink SQL (``translate``) and run
on PyFlink; the cluster plumbing beside it (``cluster``, ``rest``, ``jars``,
``environment``)."""
