"""Built-in model families: one folder each (model, data, evaluator), registered by entry point."""
