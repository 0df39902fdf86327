-- Neovim 0.11 with codeloop installed the way plugin managers do it: the plugin repository (branch nvim, built
-- by scripts/nvim_plugin.sh) cloned into a pack directory and added with :packadd (vim.pack's layout; lazy.nvim
-- adds the same folder to the runtimepath). Then lsp/codeloop.lua must be what vim.lsp.config knows, and
-- vim.lsp.enable('codeloop') must attach and complete.
-- Env: CODELOOP_CMD (JSON list, the test's server), CODELOOP_FILE, CODELOOP_LINE / CODELOOP_COL, CODELOOP_OUT.
local env = os.getenv
local out = {}

local report = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_report.lua')

local ok, err = pcall(function()
  vim.cmd('packadd codeloop')
  local config = vim.lsp.config.codeloop  -- resolved from lsp/codeloop.lua on the runtimepath
  out.default_cmd = config and config.cmd
  out.filetypes = config and config.filetypes
  out.setup_is_function = type(require('codeloop').setup) == 'function'  -- lazy.nvim's `opts = {}` calls it
  vim.lsp.config('codeloop', { cmd = vim.fn.json_decode(env('CODELOOP_CMD')), init_options = { debounceMs = 0 } })
  vim.lsp.enable('codeloop')
  vim.cmd('filetype on')  -- as any user config has (-u NONE leaves it off)
  vim.cmd('edit ' .. env('CODELOOP_FILE'))
  out.attached = vim.wait(30000, function()
    local c = vim.lsp.get_clients({ bufnr = 0, name = 'codeloop' })[1]
    return c ~= nil and c.initialized and c.server_capabilities ~= nil
  end, 50)
  if not out.attached then error('codeloop never attached') end
  local params = { textDocument = { uri = vim.uri_from_bufnr(0) },
                   position = { line = tonumber(env('CODELOOP_LINE')), character = tonumber(env('CODELOOP_COL')) } }
  for _, r in pairs(vim.lsp.buf_request_sync(0, 'textDocument/completion', params, 30000) or {}) do
    if r.err then error(vim.inspect(r.err)) end
    local item = (r.result.items or r.result)[1]
    out.label = item and item.label
  end
end)
report(out, ok, err)
