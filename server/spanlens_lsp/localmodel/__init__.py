"""The built-in local model: its catalog, where it is kept, and its installer."""
