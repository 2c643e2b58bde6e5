"""Stage 2: parse .arch text into a typed, span-carrying AST; diagnostics."""
