"""Training code (writes checkpoints and logs; not part of the pure algorithms)."""
