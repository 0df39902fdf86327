-- codeloop language server for Neovim (this folder is a plugin: lua/, lsp/; see editors/README.md).
--   Neovim 0.11+: lsp/codeloop.lua is picked up by vim.lsp.config; setup() adds options and vim.lsp.enable;
--                 completion through vim.lsp.completion (ghost text through vim.lsp.inline_completion on 0.12+).
--   Neovim 0.7-0.10: vim.lsp.start_client + buf_attach_client, completion through omnifunc (<C-x><C-o>).
-- Checked suggestions: the server's codeloop/checkResult notification ("passes 3/3 tests") is shown as
-- virtual text at the end of the function's def line; the latest one is in vim.b.codeloop_check.
-- Acceptance telemetry (opt-in server setting acceptanceLog): an accepted item's command
-- (codeloop.acceptCompletion) goes to the server; 0.11+ runs it natively, 0.7-0.10 through CompleteDone below.
-- Usage:  require('codeloop').setup({ init_options = { maxTokens = 48 } })   (lazy.nvim: opts = { ... })
local M = {}
M.check_ns = vim.api.nvim_create_namespace('codeloop_check')
M.check_highlights = { passed = 'DiagnosticOk', failed = 'DiagnosticError', check_failed = 'DiagnosticWarn',
                       pending = 'Comment' }
M.check_icons = { passed = '✓', failed = '✗', check_failed = '!', pending = '…' }

M.defaults = {
  -- --shared: every Neovim attaches to one background `codeloop serve` (one model in memory)
  cmd = { 'codeloop', 'lsp', '--shared' },
  filetypes = { 'python', 'lua', 'javascript', 'typescript', 'go', 'rust', 'c', 'cpp', 'java', 'sh' },
  root_markers = { '.git', 'pyproject.toml', 'package.json' },
  init_options = {},      -- codeloop settings: enable, model, engineUrl, maxTokens, ... (editors/README.md)
  autotrigger = true,     -- 0.11+: open the completion menu as you type
}

local function merge(opts)
  return vim.tbl_deep_extend('force', {}, M.defaults, opts or {})
end

-- codeloop/checkResult: {textDocument = {uri, version}, functionLine, status, summary, final, ...}
function M.show_check_result(err, params)
  if err or type(params) ~= 'table' or type(params.textDocument) ~= 'table' then return end
  local bufnr = vim.uri_to_bufnr(params.textDocument.uri)
  if not vim.api.nvim_buf_is_loaded(bufnr) then return end
  vim.b[bufnr].codeloop_check = params
  vim.api.nvim_buf_clear_namespace(bufnr, M.check_ns, 0, -1)
  local line = tonumber(params.functionLine) or 0
  if line < 0 or line >= vim.api.nvim_buf_line_count(bufnr) then return end
  local status = params.status or 'pending'
  local text = ('codeloop %s %s'):format(M.check_icons[status] or '', params.summary or status)
  vim.api.nvim_buf_set_extmark(bufnr, M.check_ns, line, 0, {
    virt_text = { { text, M.check_highlights[status] or 'Comment' } },
  })
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.experimental = vim.tbl_deep_extend('force', caps.experimental or {}, { codeloop = { checkResult = true } })
  return caps
end

local function handlers()
  return { ['codeloop/checkResult'] = function(err, result) M.show_check_result(err, result) end }
end

local function on_attach_011(client, bufnr, opts)
  if vim.lsp.inline_completion and client:supports_method('textDocument/inlineCompletion') then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })  -- 0.12+: ghost text, <Tab> via get()
  elseif vim.lsp.completion then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = opts.autotrigger })
  end
end

--- The vim.lsp.config table for `codeloop` (lsp/codeloop.lua returns it with the defaults).
function M.config(opts)
  opts = merge(opts)
  return {
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = opts.init_options,
    capabilities = capabilities(),
    handlers = handlers(),
    on_attach = function(client, bufnr) on_attach_011(client, bufnr, opts) end,
  }
end

local function find_root(bufnr, markers)
  local path = vim.api.nvim_buf_get_name(bufnr)
  local dir = vim.fn.fnamemodify(path, ':p:h')
  for _, marker in ipairs(markers) do
    local found = vim.fn.finddir(marker, dir .. ';')
    if found == '' then found = vim.fn.findfile(marker, dir .. ';') end
    if found ~= '' then return vim.fn.fnamemodify(found, ':p:h:h') end
  end
  return dir
end

-- 0.7-0.10 (omnifunc): the accepted item's LSP command, sent as workspace/executeCommand
function M.on_complete_done(client_id)
  local item = vim.v.completed_item
  local data = type(item) == 'table' and item.user_data or nil
  if type(data) == 'string' then
    local ok, decoded = pcall(vim.fn.json_decode, data)
    data = ok and decoded or nil
  end
  local lsp_item = type(data) == 'table' and type(data.nvim) == 'table' and type(data.nvim.lsp) == 'table'
    and data.nvim.lsp.completion_item or nil
  local command = type(lsp_item) == 'table' and lsp_item.command or nil
  if type(command) ~= 'table' or command.command ~= 'codeloop.acceptCompletion' then return end
  local client = vim.lsp.get_client_by_id(client_id)
  if client then
    client.request('workspace/executeCommand', { command = command.command, arguments = command.arguments },
                   function() end)
  end
end

local function setup_legacy(opts)
  local client_id = nil
  vim.api.nvim_create_autocmd('FileType', {
    pattern = opts.filetypes,
    callback = function(args)
      if not client_id then
        client_id = vim.lsp.start_client({
          name = 'codeloop',
          cmd = opts.cmd,
          root_dir = find_root(args.buf, opts.root_markers),
          init_options = opts.init_options,
          capabilities = capabilities(),
          handlers = handlers(),
        })
      end
      if client_id then
        vim.lsp.buf_attach_client(args.buf, client_id)
        vim.bo[args.buf].omnifunc = 'v:lua.vim.lsp.omnifunc'
        local id = client_id
        vim.api.nvim_create_autocmd('CompleteDone', {
          buffer = args.buf,
          callback = function() M.on_complete_done(id) end,
        })
      end
    end,
  })
end

function M.setup(opts)
  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config('codeloop', M.config(opts))
    vim.lsp.enable('codeloop')
  else
    setup_legacy(merge(opts))
  end
end

return M
