"""Serving: the trained student and cross-encoder exported for inference outside PyTorch (ONNX)."""
