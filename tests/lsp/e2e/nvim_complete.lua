-- Headless Neovim drives codeloop through editors/nvim/lua/codeloop.lua (0.11: vim.lsp.config; 0.7: start_client).
-- Env: CODELOOP_REPO, CODELOOP_CMD (JSON list), CODELOOP_FILE, CODELOOP_LINE / CODELOOP_COL (0-based),
--      CODELOOP_TYPE (text typed after the first completion), CODELOOP_OUT (JSON result file).
local env = function(k) return os.getenv(k) end
package.path = env('CODELOOP_REPO') .. '/editors/nvim/lua/?.lua;' .. package.path
local v = vim.version()
local out = { version = v.major .. '.' .. v.minor .. '.' .. v.patch }

local report = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_report.lua')

local ok, err = pcall(function()
  require('codeloop').setup({
    cmd = vim.fn.json_decode(env('CODELOOP_CMD')),
    init_options = { debounceMs = 0 },
    autotrigger = false,
  })
  vim.cmd('edit ' .. env('CODELOOP_FILE'))
  vim.bo.filetype = 'python'

  local client = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_attached.lua')()
  out.has_inline = client.server_capabilities.inlineCompletionProvider ~= nil

  local line, col = tonumber(env('CODELOOP_LINE')), tonumber(env('CODELOOP_COL'))
  local function request(method)
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(0) },
      position = { line = line, character = col },
      context = method == 'textDocument/inlineCompletion' and { triggerKind = 1 } or nil,
    }
    local results = vim.lsp.buf_request_sync(0, method, params, 30000)
    for _, r in pairs(results or {}) do
      if r.err then error(vim.inspect(r.err)) end
      return r.result
    end
  end

  local comp = request('textDocument/completion')
  local item = (comp.items or comp)[1]
  out.label = item and item.label
  out.new_text = item and item.textEdit and item.textEdit.newText
  if item then  -- accept it, as <C-y> would
    vim.lsp.util.apply_text_edits({ item.textEdit }, vim.api.nvim_get_current_buf(), 'utf-16')
  end
  out.buffer = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  -- undo, type a few characters like a user, ask again: the server must see Neovim's didChange
  vim.cmd('silent undo')
  local typed = env('CODELOOP_TYPE') or ''
  vim.api.nvim_buf_set_text(0, line, col, line, col, { typed })
  col = col + #typed
  vim.wait(200)
  local inline = request('textDocument/inlineCompletion')
  out.after_typing = inline and inline.items and inline.items[1] and inline.items[1].insertText
  local stats = vim.lsp.buf_request_sync(0, 'codeloop/stats', {}, 10000)
  for _, r in pairs(stats or {}) do out.stats = r.result end
end)
report(out, ok, err)
