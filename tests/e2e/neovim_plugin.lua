-- Headless Neovim (0.7.2 or 0.12) loading the real plugin from nvim/, driven by
-- tests/e2e/test_neovim.py. Environment: SPANLENS_PLUGIN (the nvim/ folder), SPANLENS_ROOT
-- (workspace), SPANLENS_SCENARIO (editor | health | docgen | search | model | units | config), SPANLENS_GO (a file the test creates to let
-- the script go on). Reports "KEY: value" lines on stdout; `cq 1` on failure, `qa!` at the end.
-- Every wait is bounded; nothing sleeps to synchronise. SPANLENS_TRACE=1: LSP trace in the log.
local root = os.getenv('SPANLENS_ROOT')
local go_file = os.getenv('SPANLENS_GO')
local scenario = os.getenv('SPANLENS_SCENARIO')

local function say(key, text)
  -- A fresh line: Neovim's own messages ("Running healthchecks...") end without one.
  io.stdout:write('\n' .. key .. ': ' .. tostring(text):gsub('\n', ' | ') .. '\n')
  io.stdout:flush()
end

local function fail(reason)
  say('FAIL', reason)
  vim.cmd('cq 1')
end

local function wait_for(what, ms, predicate)
  if not vim.wait(ms, predicate, 20) then
    fail('timed out waiting for ' .. what)
  end
end

--- The test lets us go on by creating SPANLENS_GO (after it changed the world, e.g. stopped
--- the model server); this waits for that file.
local function wait_go(step)
  say('READY', step)
  wait_for('the test to let step ' .. step .. ' go on', 60000, function()
    return vim.loop.fs_stat(go_file .. '.' .. step) ~= nil
  end)
end

vim.opt.runtimepath:prepend(os.getenv('SPANLENS_PLUGIN'))

if scenario == 'config' then
  -- SPANLENS_PLUGIN holds lsp/spanlens.lua alone, as nvim-lspconfig would ship it: no plugin.
  vim.cmd('filetype on')
  vim.lsp.enable('spanlens')
  vim.cmd('edit ' .. vim.fn.fnameescape(root .. '/src/pkg/mod.py'))
  local client
  wait_for('a spanlens client', 30000, function()
    client = vim.lsp.get_clients({ bufnr = 0, name = 'spanlens' })[1]
    return client ~= nil and client.initialized == true
  end)
  say('PLUGIN', #vim.api.nvim_get_runtime_file('lua/spanlens/*.lua', true) .. ' plugin files, '
    .. (package.loaded['spanlens'] and 'loaded' or 'not loaded'))
  say('ATTACHED', table.concat(client.config.cmd, ' ') .. ', root ' .. client.config.root_dir)
  local reply -- null until the opened file is indexed
  wait_for('a hover', 30000, function()
    local replies = vim.lsp.buf_request_sync(0, 'textDocument/hover', {
      textDocument = { uri = vim.uri_from_bufnr(0) },
      position = { line = 0, character = 6 },
    }, 5000)
    reply = replies and replies[client.id] and replies[client.id].result
    return reply ~= nil
  end)
  say('HOVER', reply.contents.value)
  client:stop()
  vim.wait(5000, function()
    return #vim.lsp.get_clients({ name = 'spanlens' }) == 0
  end, 20)
  say('DONE', 'ok')
  vim.cmd('qa!')
  do return end
end

vim.cmd('runtime plugin/spanlens.lua')
vim.cmd('filetype on')
vim.o.updatetime = 100000 -- no CursorHold refresh behind the test's back
vim.o.statusline = "%{v:lua.require'spanlens'.status()}"

local spanlens = require('spanlens')
if os.getenv('SPANLENS_TRACE') then vim.lsp.set_log_level('trace') end
-- Editor settings, answered to the server's workspace/configuration request.
local settings = { lsp = { code_lens = 'all' } }
if vim.lsp.enable and os.getenv('SPANLENS_API') ~= 'setup' then
  say('API', 'enable')
  vim.lsp.config('spanlens', { settings = { spanlens = settings } })
  vim.lsp.enable('spanlens')
else
  say('API', 'setup')
  spanlens.setup({ settings = settings })
end

--- Texts of the lens extmarks (virtual text and virtual lines) in a buffer, by 0-based line.
local function lens_marks(bufnr)
  local texts = {}
  for name, ns in pairs(vim.api.nvim_get_namespaces()) do
    if name:find('codelens', 1, true) then
      for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
        local details = mark[4] or {}
        local chunks = {}
        for _, chunk in ipairs(details.virt_text or {}) do
          table.insert(chunks, chunk[1])
        end
        for _, virt_line in ipairs(details.virt_lines or {}) do
          for _, chunk in ipairs(virt_line) do
            table.insert(chunks, chunk[1])
          end
        end
        local text = vim.trim(table.concat(chunks))
        -- 0.7 shows "Unresolved lens ..." until codeLens/resolve answers: not a title yet.
        if text ~= '' and not text:find('Unresolved lens', 1, true) then
          table.insert(texts, (mark[2] + 1) .. '=' .. text)
        end
      end
    end
  end
  table.sort(texts)
  return texts
end

--- The text of the floating window that opens next (closed once read).
local function float_text()
  local text
  wait_for('a floating window', 10000, function()
    for _, win in ipairs(vim.api.nvim_list_wins()) do
      if vim.api.nvim_win_get_config(win).relative ~= '' then
        text = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 0, -1, false)
        vim.api.nvim_win_close(win, true)
        return true
      end
    end
    return false
  end)
  return text
end

--- Run the code lens of line 1 as a user does (`vim.lsp.codelens.run()`): the float's lines,
--- once the lens is shown again (Neovim hides it while running it).
local function run_lens(bufnr)
  vim.cmd('buffer ' .. bufnr)
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  vim.lsp.codelens.run()
  local text = float_text()
  wait_for('the lens to come back after running it', 10000, function()
    return #lens_marks(bufnr) > 0
  end)
  return text
end

local function statusline()
  return vim.api.nvim_eval_statusline(vim.o.statusline, {}).str
end

local function open(path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  wait_for('a client on ' .. path, 30000, function()
    return spanlens.client_for(bufnr) ~= nil and spanlens.client_for(bufnr).initialized ~= false
  end)
  return bufnr
end

local function health_lines()
  vim.cmd('checkhealth spanlens')
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd(vim.fn.tabpagenr('$') > 1 and 'tabclose' or 'bwipeout')
  return lines
end

local first = root .. '/src/pkg/mod.py'

if scenario == 'editor' then
  -- The first file opened: its lenses appear with nothing typed, pending while the model waits.
  local mod = open(first)
  local client = spanlens.client_for(mod)
  say('ROOT', client.config.root_dir)
  local pending
  wait_for('lenses on the first file', 30000, function()
    pending = lens_marks(mod)
    return #pending > 0
  end)
  say('LENSES_BEFORE', table.concat(pending, ' ; '))
  -- Running the pending lens shows the span's parser facts in a float, then the lens again.
  say('LENS_PENDING', table.concat(run_lens(mod), ' | '))
  say('LENS_BACK', table.concat(lens_marks(mod), ' ; '))
  -- A model call is in flight (the test holds its reply): the statusline shows the work.
  local line = ''
  wait_for('the statusline to show a call in flight', 30000, function()
    line = statusline()
    return line:find('⟳', 1, true) ~= nil and line:find(' 0⟳', 1, true) == nil
  end)
  say('STATUSLINE_WORKING', line)
  -- A second buffer of the same root joins the same client.
  local top = open(root .. '/top.py')
  local ids = {}
  for _, b in ipairs({ mod, top }) do
    for _, c in ipairs(spanlens.clients(b)) do
      ids[c.id] = true
    end
  end
  say('CLIENTS', vim.tbl_count(ids) .. ' for 2 buffers, ' .. #spanlens.clients() .. ' running')
  -- :Spanlens status fills a scratch buffer with the report.
  vim.cmd('Spanlens status')
  local report
  wait_for('the status buffer', 10000, function()
    report = vim.api.nvim_buf_get_name(0):find('spanlens://status', 1, true)
      and vim.api.nvim_buf_get_lines(0, 0, -1, false)
    return report ~= nil and report ~= false
  end)
  say('STATUS_BUFFER', vim.bo.buftype .. ' ' .. vim.bo.filetype .. ' ' .. table.concat(report, ' | '))
  vim.cmd('close')
  -- Now the model answers: spanlens/enriched arrives and the lens changes by itself.
  local enriched = 0
  vim.api.nvim_create_autocmd('User', {
    pattern = 'SpanlensEnriched',
    callback = function()
      enriched = enriched + 1
    end,
  })
  wait_go('release')
  local after
  wait_for('the lens to show the enrichment', 30000, function()
    after = lens_marks(mod)
    return table.concat(after, ' '):find('Test enrichment', 1, true) ~= nil
  end)
  say('ENRICHED_NOTIFICATIONS', enriched)
  say('LENSES_AFTER', table.concat(after, ' ; '))
  -- K on the function shows the hover (0.7: the plugin maps it; 0.12: Neovim's default).
  vim.cmd('buffer ' .. mod)
  vim.api.nvim_win_set_cursor(0, { 1, 6 })
  vim.cmd('normal K')
  say('HOVER', table.concat(float_text(), ' | '))
  vim.cmd('Spanlens show')
  local show = table.concat(float_text(), ' | ')
  say('SHOW', show)
  -- The enriched lens, run: the same float as :Spanlens show.
  local ran = table.concat(run_lens(mod), ' | ')
  say('LENS_RUN', ran == show and 'same as show' or ran)
  say('LENS_AFTER_RUN', table.concat(lens_marks(mod), ' ; '))
  say('COMPLETE', table.concat(vim.fn.getcompletion('Spanlens ', 'cmdline'), ','))
  vim.cmd('Spanlens log')
  say('LOG', vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ':t'))
  vim.cmd('buffer ' .. mod)
  say('COMPLETE_RETRY', table.concat(vim.fn.getcompletion('Spanlens retry ', 'cmdline'), ','))
  -- An edit saved: the lens says stale at once (the test holds the new call's reply).
  wait_go('edit')
  vim.api.nvim_buf_set_lines(mod, 2, 3, false, { '    return {}' })
  vim.cmd('write')
  local stale
  wait_for('the lens to go stale', 30000, function()
    stale = lens_marks(mod)
    return table.concat(stale, ' '):find('stale', 1, true) ~= nil
  end)
  say('LENSES_STALE', table.concat(stale, ' ; '))
  wait_go('release2')
  local fresh
  wait_for('the lens to be fresh again', 30000, function()
    fresh = lens_marks(mod)
    local text = table.concat(fresh, ' ')
    return text:find('stale', 1, true) == nil and text:find('Test enrichment', 1, true) ~= nil
  end)
  say('LENSES_FRESH', table.concat(fresh, ' ; '))
elseif scenario == 'health' then
  local mod = open(first)
  wait_for('the first index', 30000, function()
    local s = spanlens.statuses[spanlens.client_for(mod).id]
    return s ~= nil and s.indexed == true
  end)
  say('HEALTH_UP', table.concat(health_lines(), ' | '))
  wait_go('down')
  say('HEALTH_DOWN', table.concat(health_lines(), ' | '))
  -- A save queues the new span; its call is refused, and the statusline says so.
  vim.api.nvim_buf_set_lines(mod, -1, -1, false, { '', 'def added(x):', '    return x' })
  vim.cmd('write')
  local line = ''
  wait_for('the statusline to show the backend down', 30000, function()
    line = statusline()
    return line:find('✗', 1, true) ~= nil
  end)
  say('STATUSLINE_DOWN', line)
  -- A file outside any project: no server, no root guessed.
  -- Both API paths start clients synchronously from the FileType event: count the starts.
  local started = 0
  for _, name in ipairs({ 'start', 'start_client' }) do
    local original = vim.lsp[name]
    if original then
      vim.lsp[name] = function(...)
        local id = original(...)
        if id then
          started = started + 1
        end
        return id
      end
    end
  end
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('SPANLENS_OUTSIDE')))
  say('OUTSIDE', vim.bo.filetype .. ', ' .. #spanlens.clients(0) .. ' attached, ' .. started .. ' started')
elseif scenario == 'docgen' then
  -- Messages the plugin shows, as the user reads them.
  local messages = {}
  vim.notify = function(text)
    table.insert(messages, text)
  end
  local mod = open(first)
  wait_for('the enrichment', 30000, function()
    return table.concat(lens_marks(mod), ' '):find('Test enrichment', 1, true) ~= nil
  end)
  vim.cmd('Spanlens docgen')
  wait_for('the docgen message', 30000, function()
    return #messages > 0
  end)
  say('DOCGEN_MESSAGE', messages[1])
  vim.cmd('Spanlens open_doc')
  wait_for('the doc to open', 10000, function()
    return vim.api.nvim_buf_get_name(0):find('%.md$') ~= nil
  end)
  say('DOC_NAME', vim.api.nvim_buf_get_name(0))
  say('DOC_TEXT', table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), ' | '))
elseif scenario == 'model' then
  -- What the user reads: vim.notify messages and the message area (nvim_echo).
  local messages, echoes = {}, {}
  vim.notify = function(text)
    table.insert(messages, text)
  end
  local echo = vim.api.nvim_echo
  vim.api.nvim_echo = function(chunks, history, opts)
    table.insert(echoes, chunks[1] and chunks[1][1] or '')
    return echo(chunks, history, opts)
  end
  local mod = open(first)
  wait_for('the first index', 30000, function()
    local s = spanlens.statuses[spanlens.client_for(mod).id]
    return s ~= nil and s.indexed == true
  end)
  say('HEALTH_BEFORE', table.concat(health_lines(), ' | '))
  vim.cmd('buffer ' .. mod)
  say('COMPLETE_MODEL', table.concat(vim.fn.getcompletion('Spanlens model ', 'cmdline'), ','))
  vim.cmd('Spanlens model install')
  local function ended()
    for _, text in ipairs(messages) do
      if text:find('installed', 1, true) then
        return text
      end
    end
  end
  local function embedded()
    for _, text in ipairs(messages) do
      if text:find('(search by meaning)', 1, true) then
        return text
      end
    end
  end
  wait_for('the install to end', 60000, ended)
  say('INSTALL_MESSAGE', ended())
  wait_for('the embedding model install to end', 60000, embedded)
  say('INSTALL_EMBEDDING', embedded())
  local progress = {}
  for _, text in ipairs(echoes) do
    if text:find('spanlens: installing', 1, true) then
      table.insert(progress, text)
    end
  end
  say('INSTALL_PROGRESS', table.concat(progress, ' ; '))
  messages = {}
  vim.cmd('Spanlens model install')
  wait_for('the second install to answer', 30000, ended)
  say('INSTALL_AGAIN', ended())
  wait_for('the second embedding install to answer', 30000, embedded)
  say('INSTALL_EMBEDDING_AGAIN', embedded())
  messages = {}
  vim.cmd('Spanlens model install no-such-model')
  wait_for('the unknown model error', 30000, function()
    return #messages > 1
  end)
  say('INSTALL_UNKNOWN', messages[#messages])
  say('HEALTH_AFTER', table.concat(health_lines(), ' | '))
elseif scenario == 'search' then
  -- :Spanlens search into the quickfix list, against the real server's spanlens.search.
  local messages = {}
  vim.notify = function(text)
    table.insert(messages, text)
  end
  local function relative(name)
    return name:sub(1, #root + 1) == root .. '/' and name:sub(#root + 2) or name
  end
  local mod = open(first)
  wait_for('the enrichment', 30000, function()
    return table.concat(lens_marks(mod), ' '):find('Test enrichment', 1, true) ~= nil
  end)
  vim.cmd('Spanlens search parse config')
  local info
  wait_for('the quickfix list', 30000, function()
    info = vim.fn.getqflist({ title = 1, items = 1, winid = 1 })
    return info.title:find('spanlens', 1, true) ~= nil
  end)
  say('QF_TITLE', info.title)
  say('QF_WINDOW', info.winid ~= 0 and vim.api.nvim_get_current_win() == info.winid and 'open, focused' or 'not open')
  say('QF_COUNT', #info.items)
  for _, item in ipairs(info.items) do
    local name = relative(vim.api.nvim_buf_get_name(item.bufnr))
    say('QF_ITEM', string.format('%s:%d:%d:%s', name, item.lnum, item.col, item.text))
  end
  say('QF_MESSAGES', table.concat(messages, ' ; '))
  vim.cmd('cfirst')
  local cursor = vim.api.nvim_win_get_cursor(0)
  say('QF_JUMP', relative(vim.api.nvim_buf_get_name(0)) .. ':' .. cursor[1] .. ':' .. (cursor[2] + 1))
  messages = {}
  vim.cmd('Spanlens search zqxjv wqzk')
  wait_for('the nothing-found message', 30000, function()
    return #messages > 0
  end)
  say('QF_NOTHING', table.concat(messages, ' ; '))
elseif scenario == 'units' then
  -- No server: the statusline text for each state, the root rule, a missing executable.
  local payloads = {
    indexing = { state = 'indexing', indexing = { done = 120, total = 800 }, queue = {} },
    facts_only = { state = 'facts_only', indexing = vim.NIL, queue = {} },
    paused = { state = 'paused', indexing = vim.NIL, queue = { backlog = 5 } },
    offline = { state = 'offline', lastError = 'connection refused', backends = { unreachable = true } },
    waiting = { state = 'waiting', indexing = vim.NIL, queue = { saved = 1, open = 2, backlog = 9 }, inFlight = 0 },
    idle = { state = 'idle', indexing = vim.NIL, queue = { saved = 0 }, inFlight = 0, lastError = vim.NIL },
    no_workspace = { state = 'no_workspace' },
  }
  for _, name in ipairs({ 'indexing', 'facts_only', 'paused', 'offline', 'waiting', 'idle', 'no_workspace' }) do
    say('STATUS_' .. name, spanlens.format_status(payloads[name]))
  end
  -- .git above, pyproject.toml nearer: the first marker in order wins, as vim.fs.root does.
  say('ROOT_MONOREPO', spanlens.find_root(root .. '/sub/x.py'))
  if vim.fs and vim.fs.root then
    say('ROOT_NEOVIM', vim.fs.root(root .. '/sub/x.py', spanlens.root_markers))
  else
    say('ROOT_NEOVIM', spanlens.find_root(root .. '/sub/x.py'))
  end
  vim.g.spanlens_cmd = { root .. '/no-such-spanlens', 'serve' }
  say('HEALTH_MISSING', table.concat(health_lines(), ' | '))
  -- :Spanlens search with no query asks for one; with no server the answer is one message.
  local commands = require('spanlens.commands')
  local messages, prompts = {}, {}
  local notify, input = vim.notify, vim.ui.input
  vim.notify = function(text)
    table.insert(messages, text)
  end
  vim.ui.input = function(opts, on_confirm)
    table.insert(prompts, opts.prompt)
    on_confirm(#prompts == 1 and 'read settings from disk' or nil)
  end
  vim.cmd('enew')
  commands.create(0)
  vim.cmd('Spanlens search')
  vim.cmd('Spanlens search   ') -- dismissed: nothing more
  vim.notify, vim.ui.input = notify, input
  say('SEARCH_PROMPTS', table.concat(prompts, ','))
  say('SEARCH_NO_CLIENT', table.concat(messages, ' ; '))
  -- Model text in a quickfix line: one plain line, control and bidi characters gone.
  local file = root .. '/src/pkg/wide.py'
  vim.fn.writefile({ 'x = 1', 'def  \195\164\226\130\172(a):', '    pass' }, file)
  local evil = 'Reads\tthe\r\nfile\7 \27[31mred\27[0m \226\128\174gnp.exe\226\128\172 zero\226\128\139width \194\133next\226\128\168line'
  local items = commands.search_items({
    { uri = vim.uri_from_fname(file), range = { start = { line = 1, character = 6 }, ['end'] = { line = 2, character = 8 } },
      name = 'f\nx', summary = evil, why = { 'name', 'meaning' } },
    { uri = vim.uri_from_fname(file), name = 'no_range' },
    { name = 'no_uri', range = { start = { line = 0, character = 0 } } },
  }, 'utf-16')
  say('SEARCH_ITEMS', #items)
  for _, item in ipairs(items) do
    say('SEARCH_ITEM', string.format('%s:%d:%d:%s', vim.fn.fnamemodify(item.filename, ':t'), item.lnum, item.col, item.text))
  end
  say('SEARCH_LONG', #commands.plain_line(string.rep('\195\169', 150)) .. ' bytes')
else
  fail('unknown scenario ' .. tostring(scenario))
end

for _, client in ipairs(spanlens.clients()) do
  if vim.fn.has('nvim-0.11') == 1 then
    client:stop()
  else
    client.stop()
  end
end
vim.wait(5000, function()
  return #spanlens.clients() == 0
end, 20)
say('DONE', 'ok')
vim.cmd('qa!')
