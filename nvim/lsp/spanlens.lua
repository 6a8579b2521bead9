-- Neovim 0.11+: `vim.lsp.enable('spanlens')` with this plugin on the runtimepath. Override any
-- field with `vim.lsp.config('spanlens', {...})`; the command also with `vim.g.spanlens_cmd`.
local spanlens = require('spanlens')

return {
  cmd = spanlens.cmd(),
  filetypes = spanlens.filetypes,
  root_markers = spanlens.root_markers,
  -- A file outside any project starts no server (never a root guessed from the file's folder).
  workspace_required = true,
  -- Answered to the server's workspace/configuration request for the `spanlens` section.
  settings = { spanlens = vim.empty_dict() },
  handlers = spanlens.handlers,
}
