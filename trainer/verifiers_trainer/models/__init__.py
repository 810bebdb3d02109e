"""Models: loading, the offline SmolLM2 default, tiny test models."""
