"""Evaluators: streaming metrics over backend outputs (``update`` per sample, ``compute`` at the end)."""
