"""Command-line entry points: vf-eval, vf-init, vf-install."""
