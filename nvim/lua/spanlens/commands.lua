-- `:Spanlens {subcommand}`, buffer-local in every buffer a spanlens server serves. Each
-- subcommand runs one `spanlens.*` server command (see protocol.md) and shows its result.
local M = {}

local function notify(text, level)
  vim.notify('spanlens: ' .. text, level or vim.log.levels.INFO)
end

--- Send `workspace/executeCommand` through `client`; `on_result(result, client)` gets its reply,
--- an error is one line in the message area.
local function send(client, bufnr, params, on_result)
  require('spanlens').request(client, 'workspace/executeCommand', params, function(err, result)
    if err then
      notify(err.message or (params.command .. ' failed'), vim.log.levels.ERROR)
      return
    end
    on_result(result or {}, client)
  end, bufnr)
end

--- Run a server command for `bufnr`; `on_result(result, client)` gets its reply.
local function execute(bufnr, command, argument, on_result)
  local client = require('spanlens').client_for(bufnr)
  if not client then
    notify('no spanlens server serves this buffer', vim.log.levels.ERROR)
    return
  end
  send(client, bufnr, { command = command, arguments = argument and { argument } or {} }, on_result)
end

--- The float of `:Spanlens show` and of a code lens run: a `spanlens.showSpan` reply's Markdown,
--- the span's enrichment or its parser facts (labelled "Parser facts") and its state, as the
--- hover shows them. The server renders it: model text arrives escaped, with control, terminal
--- escape and bidi characters dropped (protocol.md, "Hover").
function M.show_span(result)
  local lines = vim.split(result.markdown or '', '\n', { plain = true })
  vim.lsp.util.open_floating_preview(lines, 'markdown', { border = 'rounded', focus_id = 'spanlens' })
end

--- Client side of the `spanlens.showSpan` command of a code lens (`vim.lsp.codelens.run()`):
--- Neovim hands it here instead of sending it, since Neovim would drop the server's reply. The
--- float opens; the lens, which Neovim hides on its line while running it, is asked for again.
function M.run_lens(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return notify('the server of this code lens has stopped', vim.log.levels.ERROR)
  end
  local params = { command = command.command, arguments = command.arguments or {} }
  send(client, ctx.bufnr, params, M.show_span)
  require('spanlens').refresh_lenses(ctx.bufnr)
end

local function uri_of(bufnr)
  return vim.uri_from_bufnr(bufnr)
end

local function position_of(bufnr, client)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  return { uri = uri_of(bufnr), line = params.position.line, character = params.position.character }
end

--- A scratch buffer in a split holding `text` (Markdown).
function M.scratch(name, text)
  vim.cmd('botright new')
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].buftype = 'nofile'
  vim.bo[bufnr].bufhidden = 'wipe'
  vim.bo[bufnr].swapfile = false
  pcall(vim.api.nvim_buf_set_name, bufnr, name)
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, vim.split(text, '\n', { plain = true }))
  vim.bo[bufnr].modifiable = false
  vim.bo[bufnr].filetype = 'markdown'
  return bufnr
end

-- Format characters that reorder or hide text (U+00AD, U+061C, U+200B-U+200F, U+202A-U+202E,
-- U+2060-U+2064, U+2066-U+206F, U+FEFF), as byte patterns of their UTF-8 encodings.
local FORMAT_CHARACTERS = {
  '\194\173',
  '\216\156',
  '\226\128[\139-\143]',
  '\226\128[\170-\174]',
  '\226\129[\160-\164]',
  '\226\129[\166-\175]',
  '\239\187\191',
}

--- Untrusted text (a model's summary) as one plain line: control characters (C0, C1) and line
--- breaks become spaces, bidi overrides and zero-width characters go, spaces collapse; at most
--- `limit` bytes (default 200), cut at a character boundary.
function M.plain_line(text, limit)
  local line = tostring(text or '')
  line = line:gsub('\194[\128-\159]', ' '):gsub('\226\128[\168\169]', ' '):gsub('[%z\1-\31\127]', ' ')
  for _, pattern in ipairs(FORMAT_CHARACTERS) do
    line = line:gsub(pattern, '')
  end
  line = vim.trim((line:gsub('%s+', ' ')))
  limit = limit or 200
  if #line > limit then
    local cut = limit
    while cut > 0 and line:byte(cut + 1) and line:byte(cut + 1) >= 128 and line:byte(cut + 1) < 192 do
      cut = cut - 1 -- back to the start of a character
    end
    line = line:sub(1, cut) .. '…'
  end
  return line
end

local function is_position(p)
  return type(p) == 'table' and type(p.line) == 'number' and type(p.character) == 'number'
end

--- Quickfix items of a `spanlens.search` reply's results, in rank order: the span's start
--- (`offset_encoding` columns made byte columns) and `name — summary [why]` as one plain line.
--- Results that are not spans (no uri, name or range) are left out.
function M.search_items(results, offset_encoding)
  local items = {}
  for _, r in ipairs(type(results) == 'table' and results or {}) do
    local ok, located = false, nil
    if type(r) == 'table' and type(r.uri) == 'string' and type(r.name) == 'string'
        and type(r.range) == 'table' and is_position(r.range.start) then
      local location = { uri = r.uri, range = { start = r.range.start, ['end'] = r.range.start } }
      ok, located = pcall(vim.lsp.util.locations_to_items, { location }, offset_encoding or 'utf-16')
    end
    if ok and located and located[1] then
      local text = M.plain_line(r.name, 120)
      if type(r.summary) == 'string' and r.summary ~= '' then
        text = text .. ' — ' .. M.plain_line(r.summary)
      end
      local why = {}
      for _, reason in ipairs(type(r.why) == 'table' and r.why or {}) do
        table.insert(why, M.plain_line(reason, 40))
      end
      if #why > 0 then
        text = text .. ' [' .. table.concat(why, ' · ') .. ']'
      end
      local item = located[1]
      table.insert(items, { filename = item.filename, lnum = item.lnum, col = item.col, text = text })
    end
  end
  return items
end

--- `:Spanlens search {query}`: the server's `spanlens.search` ranked spans into the quickfix
--- list (titled with the query), opened. No query: asked for with |vim.ui.input()|.
function M.search(bufnr, query)
  query = vim.trim(query or '')
  if query == '' then
    vim.ui.input({ prompt = 'spanlens search: ' }, function(input)
      if input and vim.trim(input) ~= '' then
        M.search(bufnr, input)
      end
    end)
    return
  end
  execute(bufnr, 'spanlens.search', { query = query }, function(result, client)
    if type(result.results) ~= 'table' then
      return notify("the server's answer to spanlens.search has no results: update spanlens", vim.log.levels.ERROR)
    end
    local note = type(result.note) == 'string' and M.plain_line(result.note) or nil
    local items = M.search_items(result.results, client.offset_encoding)
    if #items == 0 then
      return notify('nothing found for "' .. M.plain_line(query, 80) .. '"' .. (note and ' (' .. note .. ')' or ''), vim.log.levels.WARN)
    end
    vim.fn.setqflist({}, ' ', { title = 'spanlens search: ' .. M.plain_line(query, 80), items = items })
    vim.cmd('botright copen')
    if note then
      notify(note)
    end
  end)
end

local function count_text(n, what)
  return string.format('%d %s%s', n or 0, what, n == 1 and '' or 's')
end

M.subcommands = {
  status = function(bufnr)
    execute(bufnr, 'spanlens.statusReport', nil, function(result)
      M.scratch('spanlens://status', result.markdown or 'spanlens: no status')
    end)
  end,
  enrich = function(bufnr)
    execute(bufnr, 'spanlens.enrichFile', { uri = uri_of(bufnr) }, function(result)
      notify(count_text(result.queued, 'span') .. ' queued')
    end)
  end,
  enrich_span = function(bufnr)
    local client = require('spanlens').client_for(bufnr)
    if not client then
      return notify('no spanlens server serves this buffer', vim.log.levels.ERROR)
    end
    execute(bufnr, 'spanlens.enrichSpan', position_of(bufnr, client), function(result)
      notify(result.queued == 0 and 'this span is already enriched' or 'span queued')
    end)
  end,
  retry = function(bufnr, arg)
    local argument = arg == 'all' and vim.empty_dict() or { uri = uri_of(bufnr) }
    execute(bufnr, 'spanlens.retryFailed', argument, function(result)
      notify(count_text(result.retried, 'failed span') .. ' retried')
    end)
  end,
  pause = function(bufnr)
    execute(bufnr, 'spanlens.pause', nil, function()
      notify('paused: no background work')
    end)
  end,
  resume = function(bufnr)
    execute(bufnr, 'spanlens.resume', nil, function()
      notify('resumed')
    end)
  end,
  show = function(bufnr)
    local client = require('spanlens').client_for(bufnr)
    if not client then
      return notify('no spanlens server serves this buffer', vim.log.levels.ERROR)
    end
    execute(bufnr, 'spanlens.showSpan', position_of(bufnr, client), M.show_span)
  end,
  search = function(bufnr, _, _, rest)
    M.search(bufnr, rest)
  end,
  docgen = function(bufnr)
    execute(bufnr, 'spanlens.docgenFile', { uri = uri_of(bufnr) }, function(result, client)
      local doc = 'the doc'
      if type(result.uri) == 'string' then
        doc = vim.uri_to_fname(result.uri)
        local root = client.config.root_dir
        if root and doc:sub(1, #root + 1) == root .. '/' then
          doc = doc:sub(#root + 2)
        end
      end
      notify(string.format('%s written (%s)', doc, count_text(result.modelCalls, 'model call')))
    end)
  end,
  open_doc = function(bufnr)
    execute(bufnr, 'spanlens.openDoc', { uri = uri_of(bufnr) }, function(result)
      if type(result.uri) ~= 'string' then
        return notify('no doc for this file yet', vim.log.levels.WARN)
      end
      vim.cmd('edit ' .. vim.fn.fnameescape(vim.uri_to_fname(result.uri)))
    end)
  end,
  model = function(bufnr, action, name)
    if action ~= 'install' then
      return notify('usage: :Spanlens model install [NAME]', vim.log.levels.ERROR)
    end
    if name then
      return M.install_model(bufnr, name)
    end
    -- Setup: the default model, then the embedding model (search by meaning); a failure
    -- stops there (its message is the one line), and an installed model is a no-op.
    M.install_model(bufnr, nil, function()
      M.install_model(bufnr, M.embedding_model)
    end)
  end,
  log = function()
    local log = vim.lsp.log and vim.lsp.log.get_filename
    local path = log and log() or vim.lsp.get_log_path() -- get_log_path(): before 0.11
    vim.cmd('edit ' .. vim.fn.fnameescape(path))
  end,
}

M.names = {
  'status',
  'enrich',
  'enrich_span',
  'retry',
  'pause',
  'resume',
  'show',
  'search',
  'docgen',
  'open_doc',
  'model',
  'log',
}

--- The built-in embedding model, installed after the default one by `:Spanlens model install`.
M.embedding_model = 'all-minilm-l6-v2'

--- Model names for `:Spanlens model install `: the catalog the server uses.
M.model_names = { 'qwen2.5-coder-1.5b', 'qwen2.5-coder-0.5b', M.embedding_model }

--- Install model `name` (nil: the default) through the server, its progress through
--- `$/progress`; one message when it ends, then `after()` (not called on a failure).
function M.install_model(bufnr, name, after)
  notify('installing ' .. (name or 'the default model') .. '...')
  execute(bufnr, 'spanlens.installModel', name and { name = name } or vim.empty_dict(), function(result)
    local label = result.label or result.name or 'the model'
    if result.kind == 'embedding' then
      label = label .. ' (search by meaning)'
    end
    if type(result.note) == 'string' then
      notify(label .. ' installed at ' .. tostring(result.path) .. ', but not in use: ' .. result.note, vim.log.levels.WARN)
    elseif result.installed then
      notify(label .. ' installed: ' .. tostring(result.path))
    else
      notify(label .. ' was already installed: ' .. tostring(result.path))
    end
    if after then
      after()
    end
  end)
end

--- Completion for `:Spanlens `: subcommand names, then `all` for retry, `install` and the
--- model names for model.
function M.complete(arglead, cmdline)
  local words = vim.split(cmdline, '%s+', { trimempty = true })
  local position = #words + (arglead == '' and 1 or 0) -- the word being completed
  local candidates = M.names
  if position == 3 then
    candidates = ({ retry = { 'all' }, model = { 'install' } })[words[2]] or {}
  elseif position == 4 then
    candidates = (words[2] == 'model' and words[3] == 'install') and M.model_names or {}
  elseif position > 4 then
    candidates = {}
  end
  return vim.tbl_filter(function(name)
    return name:sub(1, #arglead) == arglead
  end, candidates)
end

--- Run `:Spanlens {name} [arg [arg2]]` for buffer `bufnr`; `rest` is the text after `name`
--- (the query of `search`).
function M.run(bufnr, name, arg, arg2, rest)
  local subcommand = M.subcommands[name]
  if not subcommand then
    return notify('unknown command ' .. tostring(name) .. ' (one of: ' .. table.concat(M.names, ', ') .. ')', vim.log.levels.ERROR)
  end
  subcommand(bufnr, arg, arg2, rest)
end

--- Create `:Spanlens` in one buffer.
function M.create(bufnr)
  vim.api.nvim_buf_create_user_command(bufnr, 'Spanlens', function(opts)
    local rest = opts.args:gsub('^%s*%S+%s*', '', 1)
    M.run(vim.api.nvim_get_current_buf(), opts.fargs[1], opts.fargs[2], opts.fargs[3], rest)
  end, { nargs = '+', complete = M.complete, desc = 'spanlens: status, enrich, show, search, docgen, ...' })
end

return M
