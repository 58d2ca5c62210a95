" Keep files: *.kp (editors/gen.js)
au BufRead,BufNewFile *.kp set filetype=keep
