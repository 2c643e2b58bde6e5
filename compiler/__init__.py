"""Stage 3: resolve names and blocks, build the graph IR, infer shapes, params
and MACs, check; emitters read the same graph."""
