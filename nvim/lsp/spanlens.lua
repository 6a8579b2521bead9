---@brief
---
--- `spanlens`, a language server that knows what every function in your repository does: it
--- indexes the code spans of each file with tree-sitter and has a language model (a local one,
--- Ollama, or an OpenAI-compatible server) enrich them, shown in hovers, code lenses,
--- diagnostics and workspace symbols. Install it with `pipx`, `uv tool` or `pip`:
---
--- ```sh
--- pip install spanlens-lsp
--- ```
---
--- The server keeps its index in `<root>/.spanlens`, so it starts only inside a project. Its
--- settings are the `spanlens` section (the same keys as `spanlens.toml`):
---
--- ```lua
--- vim.lsp.config('spanlens', {
---   settings = { spanlens = { lsp = { code_lens = 'all' } } },
--- })
--- ```
---
--- Running a code lens (`vim.lsp.codelens.run()`) shows the span in a float with the spanlens
--- Neovim plugin (`nvim/` in its repository), which also adds `:Spanlens` commands, a statusline
--- component and `:checkhealth spanlens`.

---@type vim.lsp.Config
return {
  cmd = { 'spanlens', 'serve' },
  filetypes = {
    'python',
    'javascript',
    'javascriptreact',
    'typescript',
    'typescriptreact',
    'go',
    'rust',
    'java',
  },
  root_markers = {
    'spanlens.toml',
    '.git',
    'pyproject.toml',
    'package.json',
    'go.mod',
    'Cargo.toml',
    'pom.xml',
    'build.gradle',
  },
  workspace_required = true,
  settings = { spanlens = vim.empty_dict() },
}
