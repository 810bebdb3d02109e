"""Inference backends: vf-vllm (server + weight updates) and the in-process engine."""
