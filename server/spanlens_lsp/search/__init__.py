"""Search by meaning (issue 19): span names, keywords and embeddings ranked together."""
