"""Latency: percentiles of per-inference timings collected by pytest-benchmark."""
