-- Minimal init for trying codeloop:  nvim -u editors/nvim/init.lua file.py
-- (or copy lua/codeloop.lua into ~/.config/nvim/lua/ and call require('codeloop').setup() from your init.lua)
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)')
package.path = here .. 'lua/?.lua;' .. package.path
require('codeloop').setup({ init_options = { maxTokens = 48 } })
