"""Stage 4: the shared trainer and data (the trainer issue fills this package)."""
