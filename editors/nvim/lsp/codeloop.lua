-- Neovim 0.11+ `vim.lsp.config` for codeloop: with this plugin on the runtimepath,
--   vim.lsp.enable('codeloop')
-- starts `codeloop lsp --shared` for the usual code filetypes. Override with vim.lsp.config('codeloop', {...})
-- (e.g. init_options = { maxTokens = 48 }) or call require('codeloop').setup({...}).
return require('codeloop').config()
