"""The medallion: raw platform events -> bronze (as received) -> silver (validated, cleaned,
deduplicated) -> gold (5-minute aggregates), each hop a surestream pipeline into Iceberg,
exactly once (docs/medallion.md)."""
