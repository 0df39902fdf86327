-- Shared end of the headless Neovim scripts: write `out` (with ok / error) as JSON to $CODELOOP_OUT and quit
-- with a status the test can read. Usage: dofile(<this file>)(out, ok, err)
return function(out, ok, err)
  out.ok = ok
  out.error = ok and nil or tostring(err)
  local f = io.open(os.getenv('CODELOOP_OUT'), 'w')
  f:write(vim.fn.json_encode(out))
  f:close()
  vim.cmd(ok and 'qa!' or 'cq!')
end
