"""GRPO: the loss and advantage math (``math``), the config (``config``) and the trainer."""
