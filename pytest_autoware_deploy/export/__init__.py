"""Exporters: PyTorch model building, ONNX export and the content-addressed artifact cache."""
