"""Inference: loading trained models, offline separation of any length, streaming drivers."""
