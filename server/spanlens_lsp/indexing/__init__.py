"""Source files to spans: languages (tree-sitter), facts, hashing, diffing against the store."""
