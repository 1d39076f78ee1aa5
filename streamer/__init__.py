"""streamer: ACE IoT building-automation timeseries into ClickHouse through Kafka."""

__version__ = "0.1.0"
