"""Command-line tools of the trainer package: ``vf-train`` (``train.py``)."""
