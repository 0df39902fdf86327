" codeloop language server through ALE (Vim 8.2+/9, Debian: apt install vim vim-ale).
" Put this in ~/.vim/plugin/codeloop.vim (or source it from your vimrc).
" Completion: ALE's completion menu as you type, or <C-x><C-o> (ALE's omnifunc).
if exists('g:loaded_codeloop')
  finish
endif
let g:loaded_codeloop = 1

" Completion as you type (ALE reads g:ale_completion_enabled when it loads; once loaded, Enable() switches it on).
let g:codeloop_autocomplete = get(g:, 'codeloop_autocomplete', 1)
if !exists('g:loaded_ale')
  let g:ale_completion_enabled = g:codeloop_autocomplete || get(g:, 'ale_completion_enabled', 0)
  " NOTE: Debian's vim-ale is an optional package (pack/dist-bundle/opt/ale): nothing loads it unless asked.
  " Plugin managers and pack/*/start put ALE on 'runtimepath' already, where this packadd finds nothing.
  silent! packadd ale
elseif g:codeloop_autocomplete
  call ale#completion#Enable()
endif
if empty(globpath(&runtimepath, 'autoload/ale/linter.vim'))
  echoerr 'codeloop: ALE not found (apt install vim-ale, or install dense-analysis/ale)'
  finish
endif
set completeopt=menu,menuone,noinsert,noselect

let g:codeloop_command = get(g:, 'codeloop_command', 'codeloop lsp --shared')
let g:codeloop_options = get(g:, 'codeloop_options', {'maxTokens': 48})
let s:filetypes = ['python', 'javascript', 'typescript', 'go', 'rust', 'c', 'cpp', 'lua', 'sh']

function! s:CodeloopRoot(buffer) abort
  let l:git = ale#path#FindNearestDirectory(a:buffer, '.git')
  return empty(l:git) ? expand('#' . a:buffer . ':p:h') : fnamemodify(l:git, ':h:h')
endfunction

for s:ft in s:filetypes
  call ale#linter#Define(s:ft, {
  \   'name': 'codeloop',
  \   'lsp': 'stdio',
  \   'executable': {b -> split(g:codeloop_command)[0]},
  \   'command': {b -> g:codeloop_command},
  \   'project_root': function('s:CodeloopRoot'),
  \   'initialization_options': {b -> g:codeloop_options},
  \})
  " ALE runs only the linters g:ale_linters names, and has its own list for python, go and rust: add ours.
  let s:names = map(ale#linter#Get(s:ft), 'v:val.name')
  if index(s:names, 'codeloop') < 0
    let g:ale_linters = extend(get(g:, 'ale_linters', {}), {s:ft: s:names + ['codeloop']})
  endif
endfor

" <C-x><C-o> asks ALE; a FileType autocmd because filetype plugins (ftplugin/python.vim) set their own omnifunc.
augroup codeloop
  autocmd!
  execute 'autocmd FileType ' . join(s:filetypes, ',') . ' setlocal omnifunc=ale#completion#OmniFunc'
augroup END
