-- Headless Neovim accepts a codeloop suggestion the way a user does: the completion menu (0.11:
-- vim.lsp.completion.get(); 0.7: omnifunc <C-x><C-o>), first dismissed with <C-e>, then asked again and taken
-- with <C-y>. The server's acceptance log must then hold a passed-over and an accepted event.
-- Env: CODELOOP_REPO, CODELOOP_CMD (JSON list), CODELOOP_FILE, CODELOOP_LINE (0-based), CODELOOP_LOG,
--      CODELOOP_OUT (JSON result file).
local env = function(k) return os.getenv(k) end
package.path = env('CODELOOP_REPO') .. '/editors/nvim/lua/?.lua;' .. package.path
local report = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_report.lua')
local v = vim.version()
local out = { version = v.major .. '.' .. v.minor .. '.' .. v.patch, steps = {} }
local legacy = vim.lsp.completion == nil
local done = false
local function finish(ok, err)
  if done then return end
  done = true
  out.buffer = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  report(out, ok, err)
end

local function keys(k)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(k, true, false, true), 'n', false)
end

local function log_text()
  local f = io.open(env('CODELOOP_LOG'), 'r')
  if not f then return '' end
  local text = f:read('*a')
  f:close()
  return text
end

-- Each step waits (a timer, so the main loop keeps reading the keys we feed) until `ready()`, then acts.
local function after(name, ready, act, next_step)
  local started, timer = vim.loop.now(), vim.loop.new_timer()
  timer:start(50, 50, vim.schedule_wrap(function()
    if done then timer:stop() return end
    if ready() then
      timer:stop()
      table.insert(out.steps, name)
      local ok, err = pcall(act)
      if not ok then return finish(false, err) end
      if next_step then next_step() end
    elseif vim.loop.now() - started > 60000 then
      timer:stop()
      finish(false, 'timed out waiting for: ' .. name)
    end
  end))
end

local ok, err = pcall(function()
  vim.o.completeopt = 'menuone'
  require('codeloop').setup({
    cmd = vim.fn.json_decode(env('CODELOOP_CMD')),
    init_options = { debounceMs = 0, acceptanceLog = true, acceptanceLogPath = env('CODELOOP_LOG') },
    autotrigger = false,
  })
  vim.cmd('edit ' .. env('CODELOOP_FILE'))
  vim.bo.filetype = 'python'
  local client = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_attached.lua')()
  out.commands = (client.server_capabilities.executeCommandProvider or {}).commands
end)
if not ok then return finish(false, err) end

local trigger = legacy and '<C-x><C-o>' or '<Cmd>lua vim.lsp.completion.get()<CR>'
local pum = function() return vim.fn.pumvisible() == 1 end
vim.api.nvim_win_set_cursor(0, { tonumber(env('CODELOOP_LINE')) + 1, 0 })
keys('A' .. trigger)
after('first menu', pum, function() keys('<C-e>') end, function()
  after('dismissed', function() return not pum() end, function() keys(trigger) end, function()
    after('second menu', pum, function() keys('<C-y>') end, function()
      after('accept logged', function() return log_text():find('"accepted": true', 1, true) ~= nil end,
            function()
              keys('<Esc>')
              out.log = vim.split(log_text(), '\n', { trimempty = true })
            end,
            function() vim.schedule(function() finish(true) end) end)
    end)
  end)
end)
