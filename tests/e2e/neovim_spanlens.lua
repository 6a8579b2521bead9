-- Headless Neovim (0.7+) against `spanlens serve`: hover and code lens show the enrichment.
-- Environment: SPANLENS_ROOT (workspace), SPANLENS_FILE (file to open), SPANLENS_PYTHON,
-- SPANLENS_LINE (1-based line of the span to hover). Writes "HOVER:", "LENS:" lines to stdout;
-- exits 0 when both show the enrichment, else `cq 1`.
local root = os.getenv("SPANLENS_ROOT")
local file = os.getenv("SPANLENS_FILE")
local python = os.getenv("SPANLENS_PYTHON")
local line = tonumber(os.getenv("SPANLENS_LINE"))
local expected = os.getenv("SPANLENS_EXPECT") or "Test enrichment"

local function say(text)
  io.stdout:write(text .. "\n")
  io.stdout:flush()
end

local function fail(reason)
  say("FAIL: " .. reason)
  vim.cmd("cq 1")
end

vim.cmd("edit " .. vim.fn.fnameescape(file))
local bufnr = vim.api.nvim_get_current_buf()
local client_id = vim.lsp.start_client({
  name = "spanlens",
  cmd = { python, "-m", "spanlens.cli", "serve", "--stdio" },
  root_dir = root,
  workspace_folders = { { uri = vim.uri_from_fname(root), name = "ws" } },
})
if not client_id then
  fail("start_client returned nil")
end
vim.lsp.buf_attach_client(bufnr, client_id)
local client = vim.lsp.get_client_by_id(client_id)
if not vim.wait(20000, function() return client.initialized end, 50) then
  fail("client did not initialize")
end

local function hover_text()
  vim.api.nvim_win_set_cursor(0, { line, 6 })
  local params = vim.lsp.util.make_position_params()
  local responses = vim.lsp.buf_request_sync(bufnr, "textDocument/hover", params, 2000) or {}
  for _, response in pairs(responses) do
    local result = response.result
    if result and result.contents then
      return type(result.contents) == "table" and (result.contents.value or "") or tostring(result.contents)
    end
  end
  return ""
end

local hover = ""
local enriched = vim.wait(30000, function()
  hover = hover_text()
  return hover:find(expected, 1, true) ~= nil
end, 200)
say("HOVER: " .. hover:gsub("\n", " | "))
if not enriched then
  fail("hover never showed the enrichment")
end

local titles = {}
local params = { textDocument = vim.lsp.util.make_text_document_params() }
local responses = vim.lsp.buf_request_sync(bufnr, "textDocument/codeLens", params, 2000) or {}
for _, response in pairs(responses) do
  for _, lens in ipairs(response.result or {}) do
    local resolved = client.request_sync("codeLens/resolve", lens, 2000, bufnr)
    local title = resolved and resolved.result and resolved.result.command and resolved.result.command.title
    if title then
      table.insert(titles, (lens.range.start.line + 1) .. "=" .. title)
    end
  end
end
for _, title in ipairs(titles) do
  say("LENS: " .. title)
end

-- Neovim's own code lens display resolves and shows them too.
vim.lsp.codelens.refresh()
vim.wait(5000, function() return #vim.lsp.codelens.get(bufnr) > 0 end, 50)
say("DISPLAYED: " .. #vim.lsp.codelens.get(bufnr))

local ok = false
for _, title in ipairs(titles) do
  if title:find(expected, 1, true) then
    ok = true
  end
end
vim.lsp.stop_client(client_id)
vim.wait(3000, function() return vim.lsp.get_client_by_id(client_id) == nil end, 50)
if not ok then
  fail("no code lens showed the enrichment")
end
vim.cmd("qa!")
