" Vim + ALE drive codeloop (tests/lsp/test_editors.py); run with `vim -S` after the vimrc and plugins loaded.
" Env: CODELOOP_LINE (1-based; the cursor goes to its end), CODELOOP_OUT (JSON result file).
" NOTE: the completion menu needs a screen (so not -es), and Insert mode waits for keys on stdin: the test keeps
" stdin open while timers play the user.
let s:out = {'version': v:version, 'ok': v:false}
let s:line = str2nr($CODELOOP_LINE)
let s:response = v:null
let s:timeout_s = 90.0

function! s:OnResponse(response) abort
  let s:response = a:response
endfunction

" The raw textDocument/completion answer, through ALE's own request API (starts the server on first use).
function! s:RawCompletion() abort
  let l:buffer = bufnr('')
  let l:message = ale#lsp#message#Completion(l:buffer, s:line, len(getline(s:line)) + 1, '')
  call ale#lsp_linter#SendRequest(l:buffer, 'codeloop', l:message, function('s:OnResponse'))
  let l:start = reltime()
  while s:response is v:null && reltimefloat(reltime(l:start)) < s:timeout_s
    sleep 50m
  endwhile
  return s:response
endfunction

" Once ALE's menu is up, pick its first entry and leave Insert mode, as <C-n><C-y><Esc> would.
function! s:Accept(start, timer) abort
  if pumvisible()
    let s:out.menu = complete_info(['mode', 'items'])
    call timer_stop(a:timer)
    call feedkeys("\<C-n>\<C-y>\<Esc>", 't')
  elseif reltimefloat(reltime(a:start)) > s:timeout_s
    call timer_stop(a:timer)
    call feedkeys("\<Esc>", 't')
  endif
endfunction

" <C-x><C-o> at the end of the line: ALE's omnifunc asks the server and fills the menu.
function! s:OmniComplete() abort
  autocmd CompleteDone * ++once let s:out.completed_item = v:completed_item
  call cursor(s:line, 1)
  call timer_start(20, function('s:Accept', [reltime()]), {'repeat': -1})
  call feedkeys("A\<C-x>\<C-o>", 'xt!')
  let s:out.ale_result = get(b:, 'ale_completion_result', v:null)
  let s:out.line = getline(s:line)
endfunction

try
  let s:out.filetype = &filetype
  let s:out.omnifunc = &l:omnifunc
  let s:out.linters = map(ale#linter#Get(&filetype), 'v:val.name')
  let s:out.response = s:RawCompletion()
  call s:OmniComplete()
  let s:out.ok = v:true
catch
  let s:out.error = v:exception . ' at ' . v:throwpoint
endtry
call writefile([json_encode(s:out)], $CODELOOP_OUT)
qa!
