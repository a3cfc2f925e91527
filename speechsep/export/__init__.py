"""Export layer: a causal model's streaming step as a portable graph (ONNX) and its runtime."""
