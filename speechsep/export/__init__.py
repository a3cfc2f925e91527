"""Export layer: a causal model's streaming step, or any model's whole-utterance forward, as an ONNX graph
and its runtime."""
