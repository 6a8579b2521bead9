-- `:checkhealth spanlens`: the executable, the Neovim API path, the client of the buffer in
-- use and its root, the model in use, each backend and its model (from `spanlens doctor
-- --json`), the embedding model and its spans, the built-in models (`spanlens model list
-- --json`) and engine, the index.
local M = {}

local health = vim.health or require('health')
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local error = health.error or health.report_error
local info = health.info or health.report_info

--- Seconds `spanlens doctor` may take (it asks every backend for its models).
M.doctor_timeout_ms = 20000

--- Run a command to completion (bounded); returns exit code and stdout.
local function run(cmd, cwd)
  local out = {}
  local job = vim.fn.jobstart(cmd, {
    cwd = cwd,
    stdout_buffered = true,
    on_stdout = function(_, data)
      out = data
    end,
  })
  if job <= 0 then
    return nil, ''
  end
  local code = vim.fn.jobwait({ job }, M.doctor_timeout_ms)[1]
  if code == -1 then
    vim.fn.jobstop(job)
    return -1, ''
  end
  return code, table.concat(out, '\n')
end

--- The CLI command for `spanlens <sub> ...`: the server command with `serve` replaced.
local function cli(cmd, ...)
  local result = {}
  for _, word in ipairs(cmd) do
    if word == 'serve' then
      break
    end
    table.insert(result, word)
  end
  vim.list_extend(result, { ... })
  return result
end

local function check_executable(cmd)
  if vim.fn.executable(cmd[1]) ~= 1 then
    error(
      'spanlens executable not found: ' .. cmd[1],
      { 'pip install spanlens-lsp (or pipx), or set vim.g.spanlens_cmd = { "/path/to/spanlens", "serve" }' }
    )
    return false
  end
  local code, version = run(cli(cmd, '--version'))
  if code == 0 then
    ok(vim.fn.exepath(cmd[1]) .. ': ' .. vim.trim(version))
    local plugin = require('spanlens.version')
    if vim.trim(version) ~= 'spanlens ' .. plugin then
      warn('this plugin is spanlens ' .. plugin .. ', the server ' .. vim.trim(version), {
        'install the same version of both',
      })
    end
  else
    warn(cmd[1] .. ' --version failed (exit ' .. tostring(code) .. ')')
  end
  return true
end

local function check_neovim()
  local v = vim.version()
  local version = string.format('%d.%d.%d', v.major, v.minor, v.patch)
  if vim.lsp.config and vim.lsp.enable then
    ok('Neovim ' .. version .. ': vim.lsp.enable("spanlens") with lsp/spanlens.lua')
  elseif vim.fn.has('nvim-0.7') == 1 then
    ok('Neovim ' .. version .. ': require("spanlens").setup() (vim.lsp.start_client, one client per root)')
  else
    error('Neovim ' .. version .. ' is too old: spanlens needs 0.7 or later')
  end
end

local function check_client()
  local spanlens = require('spanlens')
  local bufnr = spanlens.last_buf
  if bufnr and vim.api.nvim_buf_is_valid(bufnr) then
    local client = spanlens.client_for(bufnr)
    if client then
      ok(string.format(
        'client %d attached to %s, root %s',
        client.id,
        vim.api.nvim_buf_get_name(bufnr),
        tostring(client.config.root_dir)
      ))
      return client.config.root_dir, client.id
    end
  end
  local clients = spanlens.clients()
  if #clients > 0 then
    ok(string.format('client %d running, root %s', clients[1].id, tostring(clients[1].config.root_dir)))
    return clients[1].config.root_dir, clients[1].id
  end
  warn('no spanlens client is running', {
    'open a file of an indexed language inside a project (spanlens.toml or .git above it)',
  })
  return nil
end

local function number_text(x, format)
  return type(x) == 'number' and string.format(format, x) or nil
end

--- The built-in engine from doctor's `local_engine`: model, state, memory, tokens/s.
local function check_engine(engine)
  if type(engine) ~= 'table' then
    return
  end
  local parts = {}
  for _, part in ipairs({ { engine.pid, 'pid %d' }, { engine.memory_mb, '%.0f MiB' }, { engine.tokens_per_s, '%.1f tokens/s' } }) do
    local text = number_text(part[1], part[2])
    if text then
      table.insert(parts, text)
    end
  end
  local text = string.format('built-in engine (%s): %s', tostring(engine.model), tostring(engine.state))
  if #parts > 0 then
    text = text .. ', ' .. table.concat(parts, ', ')
  end
  if engine.state == 'failed' or engine.state == 'unknown model' then
    error(text .. (type(engine.error) == 'string' and (': ' .. engine.error) or ''))
  else
    info(text)
  end
end

--- Which model serves, from the client's last `spanlens/status`.
local function check_model_source(client_id)
  local status = client_id and require('spanlens').statuses[client_id]
  local source = type(status) == 'table' and status.modelSource or nil
  if type(source) ~= 'string' then
    return nil
  end
  local texts = {
    configured = 'the configured backends',
    ollama = 'Ollama (nothing configured)',
    ['built-in'] = 'the built-in model (nothing configured)',
    none = 'none: hovers show parser facts only',
  }
  local text = 'model in use: ' .. (texts[source] or source)
  if source == 'none' then
    warn(text, { ':Spanlens model install (or `spanlens model install`) sets up the built-in model' })
  else
    ok(text)
  end
  return source
end

--- The embedding model and its spans, from the client's last `spanlens/status`.
local function check_embeddings(client_id)
  local status = client_id and require('spanlens').statuses[client_id]
  if type(status) ~= 'table' or status.modelSource == nil or status.modelSource == vim.NIL then
    return -- no status yet (or the workspace is not open)
  end
  local e = status.embeddings
  if type(e) ~= 'table' then
    info('search: keywords only (no embedding model)', {
      ':Spanlens model install all-minilm-l6-v2 (or `spanlens model install all-minilm-l6-v2`) adds search by meaning',
    })
    return
  end
  local counts = type(e.embedded) == 'number'
      and string.format('%d embedded, %d pending', e.embedded, type(e.pending) == 'number' and e.pending or 0)
    or 'not counted yet'
  local text = string.format('embedding model: %s (%s): %s', tostring(e.model), tostring(e.source), counts)
  if e.running == true then
    text = text .. ', embedding now'
  end
  if type(e.last_error) == 'string' then
    warn(text .. '; last error: ' .. e.last_error)
  else
    ok(text)
  end
  if type(e.engine) == 'table' then
    check_engine(e.engine)
  end
end

--- The built-in models: installed or not (`spanlens model list --json`).
local function check_models(cmd, source)
  local code, out = run(cli(cmd, 'model', 'list', '--json'))
  local decoded, list = pcall(vim.fn.json_decode, out)
  if code ~= 0 or not decoded or type(list) ~= 'table' or type(list.models) ~= 'table' then
    warn('spanlens model list failed (exit ' .. tostring(code) .. ')')
    return
  end
  for _, model in ipairs(list.models) do
    local name = tostring(model.name) .. (model.default == true and ' (default)' or '')
    if model.installed == true then
      ok('built-in model ' .. name .. ': installed, ' .. tostring(model.path))
    elseif model.default == true and source == 'none' then
      warn('built-in model ' .. name .. ': not installed', { ':Spanlens model install' })
    else
      info('built-in model ' .. name .. ': not installed')
    end
  end
end

local function check_doctor(cmd, root)
  local code, out = run(cli(cmd, 'doctor', '--json', root), root)
  if code == -1 then
    error('spanlens doctor did not answer within ' .. M.doctor_timeout_ms / 1000 .. ' s')
    return
  end
  local decoded, report = pcall(vim.fn.json_decode, out)
  if not decoded or type(report) ~= 'table' then
    error('spanlens doctor failed (exit ' .. tostring(code) .. ')')
    return
  end
  local config = report.config or {}
  if type(config.error) == 'string' then
    error('settings: ' .. config.error)
  else
    info('settings from: ' .. table.concat(config.sources or {}, ', '))
  end
  local backends = report.backends or {}
  if #backends == 0 then
    warn('no backend configured: hovers and lenses show parser facts only', {
      'add a [[backends]] table to spanlens.toml',
    })
  end
  local problems = report.problems or {}
  for _, b in ipairs(backends) do
    local where = string.format('backend %s (%s, %s) %s %s', b.name, b.tier, b.provider, b.url, b.model)
    if b.reachable and b.model_present ~= false then
      ok(where .. ': reachable' .. (b.model_present == true and ', model present' or ''))
    elseif b.reachable then
      error(where .. ': model missing')
    else
      local advice = {}
      for _, problem in ipairs(problems) do
        if type(problem) == 'string' and problem:find(b.url, 1, true) then
          table.insert(advice, problem)
        end
      end
      error(where .. ': unreachable' .. (b.error and b.error ~= vim.NIL and (' (' .. b.error .. ')') or ''), advice)
    end
  end
  check_engine(report.local_engine)
  local db = report.database
  if type(db) == 'table' then
    if db.exists and db.spans then
      ok(string.format(
        'index %s: %d spans, %d enriched, %d stale, %d pending, %d failed',
        db.path,
        db.spans,
        db.fresh or 0,
        db.stale or 0,
        db.pending or 0,
        db.failed or 0
      ))
    else
      warn('index ' .. tostring(db.path) .. ': ' .. tostring(db.error or db.note or 'missing'))
    end
  end
end

function M.check()
  start('spanlens')
  local cmd = require('spanlens').cmd()
  local found = check_executable(cmd)
  check_neovim()
  local root, client_id = check_client()
  local source = check_model_source(client_id)
  check_embeddings(client_id)
  if found then
    check_models(cmd, source)
  end
  if found and root then
    check_doctor(cmd, root)
  end
end

return M
