"""Embeddings of spans for search by meaning (issue 19): the text embedded, the endpoints that
embed it, and the run that keeps every span's vector current."""
