" codeloop language server through ALE (Vim 8.2+/9, Debian: apt install vim vim-ale).
" Put this in ~/.vim/plugin/codeloop.vim (or source it from your vimrc).
" Completion: ALE's completion menu (set g:ale_completion_enabled before ALE loads) or <C-x><C-o>.
let g:ale_completion_enabled = 1
set omnifunc=ale#completion#OmniFunc
set completeopt=menu,menuone,noinsert,noselect

let g:codeloop_command = get(g:, 'codeloop_command', 'codeloop lsp')
let g:codeloop_options = get(g:, 'codeloop_options', {'maxTokens': 48})

function! s:CodeloopRoot(buffer) abort
  let l:git = ale#path#FindNearestDirectory(a:buffer, '.git')
  return empty(l:git) ? expand('#' . a:buffer . ':p:h') : fnamemodify(l:git, ':h:h')
endfunction

for s:ft in ['python', 'javascript', 'typescript', 'go', 'rust', 'c', 'cpp', 'lua', 'sh']
  call ale#linter#Define(s:ft, {
  \   'name': 'codeloop',
  \   'lsp': 'stdio',
  \   'executable': {b -> split(g:codeloop_command)[0]},
  \   'command': {b -> g:codeloop_command},
  \   'project_root': function('s:CodeloopRoot'),
  \   'initialization_options': {b -> g:codeloop_options},
  \})
endfor
