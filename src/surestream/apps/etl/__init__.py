"""The ETL framework's pipeline configuration, accepted as is and translated into a
surestream spec (``surestream import etl-config FILE``; docs/etl.md).

The framework (Spark Structured Streaming underneath) describes a pipeline as JSON:
``pipelineId``, ``mode: streaming``, a ``source``, ``transforms``, a ``sink`` and the
streaming settings in ``streamingConfigJson``. ``translate_etl_config`` turns such a
document into a spec dict with the keys of PIPELINE_SPEC.md. Every field is either
translated or refused with its JSON path and the reason: a setting surestream cannot honour
is never dropped silently.

One module per concern: ``refusals`` (the error with JSON paths), ``durations``
(``"15 minutes"``, trigger modes), ``aggregations`` (``"page_views:count,clicks:sum"``),
``config`` (the pydantic model of the JSON), and the translation of each section:
``sources``, ``sinks``, ``streaming`` (watermark, late data, trigger, checkpoints),
``quality`` (data-quality rules), ``transforms``; ``translate`` joins them.
"""

from surestream.apps.etl.refusals import EtlConfigError
from surestream.apps.etl.translate import load_etl_config, translate_etl_config

__all__ = ["EtlConfigError", "load_etl_config", "translate_etl_config"]
