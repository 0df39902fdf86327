-- Headless Neovim: a checked block suggestion, the codeloop/checkResult notification rendered by
-- editors/nvim/lua/codeloop.lua as virtual text on the function's def line.
-- Env: CODELOOP_REPO, CODELOOP_CMD (JSON list), CODELOOP_FILE, CODELOOP_LINE / CODELOOP_COL (0-based), CODELOOP_OUT.
local env = function(k) return os.getenv(k) end
package.path = env('CODELOOP_REPO') .. '/editors/nvim/lua/?.lua;' .. package.path
local out = {}

local function finish(code)
  local f = io.open(env('CODELOOP_OUT'), 'w')
  f:write(vim.fn.json_encode(out))
  f:close()
  vim.cmd(code == 0 and 'qa!' or 'cq!')
end

local ok, err = pcall(function()
  local codeloop = require('codeloop')
  codeloop.setup({ cmd = vim.fn.json_decode(env('CODELOOP_CMD')), init_options = { debounceMs = 0 }, autotrigger = false })
  vim.cmd('edit ' .. env('CODELOOP_FILE'))
  vim.bo.filetype = 'python'
  dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_attached.lua')()
  local params = { textDocument = { uri = vim.uri_from_bufnr(0) },
                   position = { line = tonumber(env('CODELOOP_LINE')), character = tonumber(env('CODELOOP_COL')) } }
  local results = vim.lsp.buf_request_sync(0, 'textDocument/completion', params, 60000)
  for _, r in pairs(results or {}) do
    if r.err then error(vim.inspect(r.err)) end
    local item = (r.result.items or r.result)[1]
    out.detail = item and item.detail
  end
  out.rendered = vim.wait(30000, function()
    local marks = vim.api.nvim_buf_get_extmarks(0, codeloop.check_ns, 0, -1, { details = true })
    return #marks > 0 and (vim.b.codeloop_check or {}).final == true
  end, 50)
  local marks = vim.api.nvim_buf_get_extmarks(0, codeloop.check_ns, 0, -1, { details = true })
  if marks[1] then
    out.mark_line = marks[1][2]
    out.mark_text = marks[1][4].virt_text[1][1]
  end
  out.status = (vim.b.codeloop_check or {}).status
  out.ok = true
end)
if not ok then out.error = tostring(err) end
finish(ok and 0 or 1)
