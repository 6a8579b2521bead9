-- spanlens for Neovim: one language server per project root, code lenses that keep themselves
-- current, `:Spanlens` commands and a statusline component. Neovim 0.11+ needs only
-- `vim.lsp.enable('spanlens')` (lsp/spanlens.lua); 0.7-0.10 call `require('spanlens').setup()`.
local M = {}

--- Filetypes of every language the server indexes: kept equal to the server's table
--- (spanlens_lsp.indexing.languages) by tests/unit/test_client_languages.py.
M.filetypes = {
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'go',
  'rust',
  'java',
}

--- Project markers, in priority order: the first marker found above a file gives its root.
M.root_markers = {
  'spanlens.toml',
  '.git',
  'pyproject.toml',
  'package.json',
  'go.mod',
  'Cargo.toml',
  'pom.xml',
  'build.gradle',
}

--- Per client id: the last `spanlens/status` payload.
M.statuses = {}
--- Per buffer: the spanlens client id its commands, lenses and autocmds were set up for.
M.attached = {}
--- The last buffer a spanlens client served (`:checkhealth` runs in a buffer of its own).
M.last_buf = nil
--- setup() on 0.7-0.10: project root -> client id, so every buffer under a root shares one.
M.clients_by_root = {}
--- Options given to setup().
M.options = {}

local function value(x)
  if x == vim.NIL then
    return nil
  end
  return x
end

local function has(version)
  return vim.fn.has('nvim-' .. version) == 1
end

--- The server command: setup()'s `cmd`, else `vim.g.spanlens_cmd` (list or string), else
--- `spanlens serve`.
function M.cmd()
  local cmd = M.options.cmd or vim.g.spanlens_cmd
  if type(cmd) == 'string' then
    return vim.split(cmd, '%s+', { trimempty = true })
  end
  if type(cmd) == 'table' and #cmd > 0 then
    return vim.deepcopy(cmd)
  end
  return { 'spanlens', 'serve' }
end

--- The project root of a file: the nearest folder above it holding the first marker (in the
--- order of `root_markers`) that exists anywhere above it. Never the current directory.
function M.find_root(fname, markers)
  if not fname or fname == '' then
    return nil
  end
  local start = vim.fn.fnamemodify(fname, ':p:h')
  for _, marker in ipairs(markers or M.root_markers) do
    local dir = start
    while true do
      if vim.loop.fs_stat(dir .. '/' .. marker) then
        return dir
      end
      local parent = vim.fn.fnamemodify(dir, ':h')
      if parent == dir then
        break
      end
      dir = parent
    end
  end
  return nil
end

--- spanlens clients, optionally only those attached to `bufnr`.
function M.clients(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = 'spanlens', bufnr = bufnr })
  end
  local result = {}
  for _, client in pairs(vim.lsp.get_active_clients()) do
    if client.name == 'spanlens' and (bufnr == nil or vim.lsp.buf_is_attached(bufnr, client.id)) then
      table.insert(result, client)
    end
  end
  return result
end

--- The spanlens client of a buffer (0 or nil: the current one), or nil.
function M.client_for(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  return M.clients(bufnr)[1]
end

--- Send a request through a client (0.11 made the client's functions methods).
function M.request(client, method, params, handler, bufnr)
  if has('0.11') then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function stopped(client)
  if has('0.11') then
    return client:is_stopped()
  end
  return client.is_stopped()
end

-- ------------------------------------------------------------------------- code lenses

--- Ask for a buffer's lenses again (Neovim without `vim.lsp.codelens.enable`). Neovim
--- advertises no `workspace/codeLens/refresh` up to 0.11, so the plugin asks itself.
function M.refresh_lenses(bufnr)
  if vim.lsp.codelens.enable or not vim.api.nvim_buf_is_loaded(bufnr) then
    return
  end
  if M.attached[bufnr] == nil then
    return
  end
  if has('0.10') then
    vim.lsp.codelens.refresh({ bufnr = bufnr })
  else
    vim.api.nvim_buf_call(bufnr, function()
      vim.lsp.codelens.refresh()
    end)
  end
end

local function refresh_client_buffers(client_id, uris)
  local wanted = nil
  if uris then
    wanted = {}
    for _, uri in ipairs(uris) do
      wanted[uri] = true
    end
  end
  for _, bufnr in ipairs(vim.lsp.get_buffers_by_client_id(client_id)) do
    if wanted == nil or wanted[vim.uri_from_bufnr(bufnr)] then
      M.refresh_lenses(bufnr)
    end
  end
end

-- ------------------------------------------------------------------- server notifications

local function fire(pattern)
  if vim.api.nvim_exec_autocmds then
    pcall(vim.api.nvim_exec_autocmds, 'User', { pattern = pattern, modeline = false })
  end
end

--- Per progress token: the title of a model install's bar (`:Spanlens model install`).
M.installs = {}

--- The model install's progress in the message area (Neovim shows no `$/progress` by itself
--- before 0.12); every `$/progress` also goes to Neovim's own handler (|LspProgress|, 0.10+).
local function show_install_progress(result)
  local value = type(result) == 'table' and result.value
  if type(value) ~= 'table' then
    return
  end
  local token = tostring(result.token)
  if value.kind == 'begin' and type(value.title) == 'string' and value.title:find('^spanlens: installing ') then
    M.installs[token] = value.title
  end
  local title = M.installs[token]
  if not title then
    return
  end
  if value.kind == 'end' then
    M.installs[token] = nil
    return -- the command's reply says how it ended
  end
  local text = title
  if type(value.message) == 'string' then
    text = text .. ': ' .. value.message
  end
  if type(value.percentage) == 'number' then
    text = text .. string.format(' (%d%%)', value.percentage)
  end
  vim.api.nvim_echo({ { text } }, false, {})
end

--- Handlers for spanlens's own notifications; every spanlens client gets them.
M.handlers = {
  ['$/progress'] = function(err, result, ctx, config)
    pcall(show_install_progress, result)
    local default = vim.lsp.handlers['$/progress']
    if default then
      return default(err, result, ctx, config)
    end
  end,
  ['spanlens/status'] = function(_, result, ctx)
    if type(result) ~= 'table' then
      return
    end
    local before = M.statuses[ctx.client_id]
    M.statuses[ctx.client_id] = result
    -- The first workspace index finished: lenses asked for before it may have come back empty.
    if result.indexed == true and not (before and before.indexed == true) then
      refresh_client_buffers(ctx.client_id, nil)
    end
    -- A save was re-indexed: its changed spans' lenses now say stale.
    local saved = value(result.lastSave)
    local saved_before = before and value(before.lastSave)
    if type(saved) == 'table' and not vim.deep_equal(saved, saved_before) then
      refresh_client_buffers(ctx.client_id, nil)
    end
    pcall(vim.cmd, 'redrawstatus!')
    fire('SpanlensStatus')
  end,
  ['spanlens/enriched'] = function(_, result, ctx)
    if type(result) == 'table' and type(result.uris) == 'table' then
      refresh_client_buffers(ctx.client_id, result.uris)
    end
    fire('SpanlensEnriched')
  end,
}

--- Client-side commands of spanlens's code lenses, for every spanlens client however it was
--- started (setup(), `vim.lsp.enable`, nvim-lspconfig): Neovim runs these instead of sending
--- `workspace/executeCommand` itself, whose reply it would drop.
function M.register_commands()
  vim.lsp.commands['spanlens.showSpan'] = function(command, ctx)
    require('spanlens.commands').run_lens(command, ctx)
  end
end

-- ------------------------------------------------------------------------ statusline

local function shorten(text, limit)
  text = tostring(text):gsub('%s+', ' ')
  if vim.fn.strchars(text) > limit then
    return vim.fn.strcharpart(text, 0, limit - 1) .. '…'
  end
  return text
end

--- Statusline text for a `spanlens/status` payload.
function M.format_status(s)
  if type(s) ~= 'table' then
    return 'spanlens'
  end
  local state = value(s.state)
  local backends = value(s.backends) or {}
  local last_error = value(s.lastError)
  if state == 'offline' or value(backends.unreachable) == true then
    return 'spanlens ✗ ' .. shorten(last_error or 'no backend reachable', 40)
  end
  if state == 'no_workspace' then
    return 'spanlens: no project root'
  end
  if state == 'paused' then
    return 'spanlens paused'
  end
  if state == 'facts_only' then
    return 'spanlens facts only'
  end
  local indexing = value(s.indexing)
  if type(indexing) == 'table' then
    return string.format('spanlens indexing %d/%d', indexing.done or 0, indexing.total or 0)
  end
  if state == 'starting' then
    return 'spanlens starting'
  end
  local queued = 0
  for _, n in pairs(value(s.queue) or {}) do
    if type(n) == 'number' then
      queued = queued + n
    end
  end
  local in_flight = value(s.inFlight) or 0
  if queued > 0 or in_flight > 0 then
    return string.format('spanlens %d↑ %d⟳', queued, in_flight)
  end
  local docgen = value(s.docgen)
  local running = type(docgen) == 'table' and value(docgen.running)
  if type(running) == 'string' then
    return 'spanlens docs: ' .. shorten(running, 40)
  end
  return 'spanlens ✓'
end

--- The statusline component: the state of the current buffer's spanlens server, or '' when
--- none serves it. `set statusline+=%{v:lua.require'spanlens'.status()}`
function M.status(bufnr)
  local client = M.client_for(bufnr)
  if not client then
    return ''
  end
  return M.format_status(M.statuses[client.id])
end

-- ---------------------------------------------------------------------------- attach

--- Wire one buffer to its client: `:Spanlens`, lenses on, lens refresh events.
function M.on_attach(client, bufnr)
  if M.attached[bufnr] == client.id then
    return
  end
  M.attached[bufnr] = client.id
  M.last_buf = bufnr
  require('spanlens.commands').create(bufnr)
  local group = vim.api.nvim_create_augroup('spanlens_buffer_' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd('BufEnter', {
    group = group,
    buffer = bufnr,
    callback = function()
      M.last_buf = bufnr
      M.refresh_lenses(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'BufWritePost', 'InsertLeave', 'CursorHold' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.refresh_lenses(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('BufWipeout', {
    group = group,
    buffer = bufnr,
    callback = function()
      M.attached[bufnr] = nil
      pcall(vim.api.nvim_del_augroup_by_id, group)
    end,
  })
  M.map_hover(bufnr)
  if vim.lsp.codelens.enable then
    vim.lsp.codelens.enable(true, { bufnr = bufnr })
  else
    M.refresh_lenses(bufnr)
  end
end

--- Before 0.10, K runs 'keywordprg' even with a language server attached: map it to hover in
--- spanlens buffers, unless the user mapped K there or turned this off
--- (`setup({ hover_keymap = false })` or `vim.g.spanlens_hover_keymap = false`).
function M.map_hover(bufnr)
  if has('0.10') or M.options.hover_keymap == false or vim.g.spanlens_hover_keymap == false then
    return
  end
  local existing = vim.api.nvim_buf_call(bufnr, function()
    return vim.fn.maparg('K', 'n', false, true)
  end)
  if type(existing) == 'table' and existing.buffer == 1 then
    return
  end
  vim.keymap.set('n', 'K', vim.lsp.buf.hover, { buffer = bufnr, desc = 'spanlens: hover' })
end

--- The client configuration shared by both API paths.
function M.config(opts)
  opts = opts or M.options
  local settings = opts.settings
  if settings == nil or next(settings) == nil then
    settings = vim.empty_dict()
  end
  return {
    name = 'spanlens',
    cmd = M.cmd(),
    filetypes = opts.filetypes or M.filetypes,
    root_markers = opts.root_markers or M.root_markers,
    settings = { spanlens = settings },
    init_options = opts.init_options,
    capabilities = opts.capabilities,
    handlers = M.handlers,
    on_attach = opts.on_attach,
  }
end

--- What the plugin adds to lsp/spanlens.lua on Neovim 0.11+ (`vim.lsp.config`): its handlers,
--- and the command when `vim.g.spanlens_cmd` is set (before the plugin loads).
function M.plugin_config()
  local config = { handlers = M.handlers }
  if vim.g.spanlens_cmd ~= nil then
    config.cmd = M.cmd()
  end
  return config
end

--- Neovim before 0.8 does not answer `workspace/configuration` (it does not advertise it):
--- push the `spanlens` section once the server is up, as protocol.md allows.
function M.push_settings(client)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  if capabilities.workspace and capabilities.workspace.configuration then
    return
  end
  client.notify('workspace/didChangeConfiguration', { settings = client.config.settings })
end

local warned_no_root = {}

--- 0.7-0.10: attach a buffer to the client of its project root, starting it when needed.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.bo[bufnr].buftype ~= '' then
    return
  end
  local fname = vim.api.nvim_buf_get_name(bufnr)
  local config = M.config()
  local root = M.find_root(fname, config.root_markers)
  if not root then
    local dir = vim.fn.fnamemodify(fname, ':p:h')
    if fname ~= '' and not warned_no_root[dir] then
      warned_no_root[dir] = true
      vim.notify(
        'spanlens: no project root above ' .. dir .. ' (add spanlens.toml or .git there); not started',
        vim.log.levels.WARN
      )
    end
    return
  end
  local id = M.clients_by_root[root]
  local client = id and vim.lsp.get_client_by_id(id)
  if not client or stopped(client) then
    local user_on_attach = config.on_attach
    config.root_dir = root
    config.workspace_folders = { { uri = vim.uri_from_fname(root), name = root } }
    config.root_markers = nil
    config.filetypes = nil
    config.on_attach = function(c, b)
      M.on_attach(c, b)
      if user_on_attach then
        user_on_attach(c, b)
      end
    end
    config.on_init = M.push_settings
    id = vim.lsp.start_client(config)
    if not id then
      return
    end
    M.clients_by_root[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
end

--- Start spanlens for the filetypes it indexes. On Neovim 0.11+ this is
--- `vim.lsp.config('spanlens', ...)` + `vim.lsp.enable('spanlens')`; before, one client per
--- project root through `vim.lsp.start_client`. Options: cmd, settings (the `spanlens`
--- section), filetypes, root_markers, on_attach, capabilities, init_options.
function M.setup(opts)
  M.options = opts or {}
  M.register_commands()
  if vim.lsp.config and vim.lsp.enable then
    local config = M.config()
    config.name = nil
    config.workspace_required = true
    vim.lsp.config('spanlens', config)
    vim.lsp.enable('spanlens')
    return
  end
  local filetypes = M.options.filetypes or M.filetypes
  local group = vim.api.nvim_create_augroup('spanlens', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(filetypes, vim.bo[bufnr].filetype) then
      M.attach(bufnr)
    end
  end
end

return M
