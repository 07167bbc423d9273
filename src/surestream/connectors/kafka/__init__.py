"""Kafka: the embedded broker, client settings, topics, the source and the exactly-once sink."""
