"""Storage helpers that connectors and runners share: durable writes, chunked state.

This package sits below connectors and runners (it imports neither), so a sink and the
checkpoint store use the same fsync discipline without one importing the other.
"""

from surestream.io.chunked_state import ChunkedState
from surestream.io.durable import fsync_dir, makedirs_durable, write_atomic

__all__ = ["ChunkedState", "fsync_dir", "makedirs_durable", "write_atomic"]
