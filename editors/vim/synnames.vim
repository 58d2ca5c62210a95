" editors/vim/synnames.vim — for tests/editors/check.sh: g:list names a file
" of "SOURCE TOKENS" lines, TOKENS being the token list of SOURCE from
" `keep fmt --tokens` ("LINE COL LEN CLASS" lines); for each token, writes
" "SOURCE:LINE:COL CLASS SYNTAX-GROUP" to the file g:out, using the Keep
" syntax.  Run headless: vim -es -u NONE -N -S editors/vim/synnames.vim.
let s:out = []
for s:pair in readfile(g:list)
  let [s:src, s:toks] = split(s:pair)
  execute 'silent edit! ' . fnameescape(s:src)
  set filetype=keep
  for s:row in readfile(s:toks)
    let s:f = split(s:row)
    if len(s:f) < 4 || s:f[3] ==# 'newline' || s:f[3] ==# 'punctuation'
      continue
    endif
    let s:c = str2nr(s:f[1])
    if s:f[0] ==# '1' && getline(1)[0:2] ==# "\xef\xbb\xbf"
      let s:c += 3
    endif
    let s:name = synIDattr(synID(str2nr(s:f[0]), s:c, 1), 'name')
    call add(s:out, s:src . ':' . s:f[0] . ':' . s:f[1] . ' ' . s:f[3] . ' ' . (s:name ==# '' ? '-' : s:name))
  endfor
endfor
call writefile(s:out, g:out)
qall!
