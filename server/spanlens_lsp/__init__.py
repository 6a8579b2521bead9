"""spanlens: a language server that knows what every function in your repository does."""

__version__ = "0.1.0"
