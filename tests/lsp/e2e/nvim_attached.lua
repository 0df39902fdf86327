-- Shared by the headless Neovim scripts: wait (30 s) until codeloop is attached to the current buffer and
-- initialized; the client (0.11: vim.lsp.get_clients; 0.7: buf_get_clients), or an error.
-- Usage: local client = dofile(<this file>)()
return function()
  local function client()
    local all = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = 0 }) or vim.tbl_values(vim.lsp.buf_get_clients(0))
    return all[1]
  end
  local attached = vim.wait(30000, function()
    local c = client()
    return c ~= nil and c.initialized ~= false and c.server_capabilities ~= nil
  end, 50)
  if not attached then error('codeloop never attached') end
  return client()
end
