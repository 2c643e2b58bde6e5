"""Stage 1: the one grammar of the .arch language (arch.lark)."""
