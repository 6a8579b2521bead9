-- The plugin's version: the server's (spanlens_lsp.__version__), kept equal to it by
-- tests/unit/test_packaging.py; `:checkhealth spanlens` warns when the server on PATH differs.
return '0.1.0'
