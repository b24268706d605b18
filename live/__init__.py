"""The live layer: brokers, events, streams, presence and soft locks (SPEC §4)."""
