#!/bin/sh
# tests/fuzz/gen_dict.sh LEXER.re — the libFuzzer dictionary of Keep's
# tokens, made from the lexer's own rules so that it cannot drift from
# them: every rule of the re2c block that starts with a quoted literal
# gives that literal (`"while" { TOK(TK_WHILE); }` gives "while", `"0x"
# [0-9a-fA-F_]+ ...` gives "0x", `"--" [^\n]*` gives "--").  Escapes are
# rewritten to libFuzzer's \xNN form.
lexer=${1:-lexer/lexer.re}
sed -n '/\/\*!re2c/,/\*\//p' "$lexer" |
  sed -n 's/^[[:space:]]*"\(\([^"\\]\|\\.\)*\)".*/\1/p' |
  sed -e 's/\\n/\\x0A/g' -e 's/\\t/\\x09/g' -e 's/\\r/\\x0D/g' |
  sort -u | awk '{ printf "tok%d=\"%s\"\n", NR, $0 }'
