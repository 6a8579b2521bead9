-- Loaded at startup: the code lens command, and wires every spanlens client to its buffers (the
-- LspAttach event exists from Neovim 0.8; setup() on 0.7 passes on_attach itself).
if vim.g.loaded_spanlens then
  return
end
vim.g.loaded_spanlens = true

require('spanlens').register_commands()

-- Neovim 0.11+: lsp/spanlens.lua is the portable server config (as nvim-lspconfig would ship
-- it); the plugin adds its handlers and `vim.g.spanlens_cmd` to it.
if vim.lsp.config and vim.lsp.enable then
  vim.lsp.config('spanlens', require('spanlens').plugin_config())
end

if vim.fn.has('nvim-0.8') == 1 then
  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('spanlens_attach', { clear = true }),
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == 'spanlens' then
        require('spanlens').on_attach(client, args.buf)
      end
    end,
  })
end
