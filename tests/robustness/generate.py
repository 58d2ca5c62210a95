#!/usr/bin/env python3
# Generates the large and binary robustness tests in this directory (run once;
# the outputs are committed).  python3 tests/robustness/generate.py
import os, random
d = os.path.dirname(os.path.abspath(__file__))
def w(name, data):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())

w('deep_parens.kp', '-- 10000 nested parentheses: a clean compile error\n'
  '-- expect-error: nested too deeply\n-- expect-exit: 2\n'
  'x := ' + '(' * 10000 + '1' + ')' * 10000 + '\n')
w('deep_brackets.kp', '-- 10000 nested list brackets: a clean compile error\n'
  '-- expect-error: nested too deeply\n-- expect-exit: 2\n'
  'x := ' + '[' * 10000 + ']' * 10000 + '\n')
w('deep_brackets_unclosed.kp', '-- 10000 open brackets, never closed\n'
  '-- expect-error: nested too deeply\n-- expect-exit: 2\n'
  'x := ' + '[' * 10000 + '\n')
w('deep_blocks.kp', '-- 5000 nested blocks: a clean compile error\n'
  '-- expect-error: nested too deeply\n-- expect-exit: 2\n'
  + '{\n' * 5000 + '}\n' * 5000)
w('deep_unary.kp', '-- 10000 unary minus signs: a clean compile error\n'
  '-- expect-error: too deep\n-- expect-exit: 2\n'
  'x := ' + '- ' * 10000 + '1\n')
w('nesting_ok.kp', '-- 200 nested parentheses and 100 nested blocks are fine\n'
  'x := ' + '(' * 200 + '7' + ')' * 200 + '\nprint(x)  -- expect: 7\n'
  + '{\n' * 100 + 'print("deep")  -- expect: deep\n' + '}\n' * 100)
w('giant_list.kp', '-- a list literal of 20000 elements\n'
  'xs := [' + ', '.join(str(i) for i in range(20000)) + ']\n'
  'print(len(xs), xs[0], xs[19999])  -- expect: 20000 0 19999\n'
  'total := 0\nfor x in xs { total += x }\nprint(total)  -- expect: 199990000\n')
w('giant_string.kp', '-- a 1 MB string literal\n'
  's := "' + ''.join(chr(97 + i % 26) for i in range(1 << 20)) + '"\n'
  'print(len(s), s[0], s[1048575])  -- expect: 1048576 97 118\n'
  't := s + s\nprint(len(t))  -- expect: 2097152\n')
w('giant_map.kp', '-- a map literal of 5000 entries\n'
  'm := (' + ', '.join('"k%d" = %d' % (i, i) for i in range(5000)) + ')\n'
  'print(len(m), m["k0"], m["k4999"])  -- expect: 5000 0 4999\n')
w('many_statements.kp', '-- 20000 statements at top level\nx := 0\n'
  + 'x += 1\n' * 20000 + 'print(x)  -- expect: 20000\n')
w('invalid_utf8_in_string.kp', b'-- invalid UTF-8 inside a string literal is a compile error\n'
  b'-- expect-error: 4:6: error: invalid UTF-8 in string literal\n-- expect-exit: 2\n'
  b's := "bad \xff\xfe byte"\nprint(s)\n')
w('invalid_utf8_overlong.kp', b'-- an overlong UTF-8 encoding in a string literal\n'
  b'-- expect-error: 4:6: error: invalid UTF-8 in string literal\n-- expect-exit: 2\n'
  b's := "\xc0\xaf"\n')
w('invalid_utf8_truncated.kp', b'-- a truncated UTF-8 sequence at the end of a string literal\n'
  b'-- expect-error: 4:6: error: invalid UTF-8 in string literal\n-- expect-exit: 2\n'
  b's := "ab\xe6\x97"\n')
w('invalid_utf8_in_code.kp', b'-- a stray invalid byte in code\n'
  b'-- expect-error: 4:8: error: unexpected character (byte 0xFF)\n-- expect-exit: 2\n'
  b'x := 1 \xff 2\n')
w('nul_in_code.kp', b'-- a NUL byte in code\n'
  b'-- expect-error: 4:7: error: unexpected character (byte 0x00)\n-- expect-exit: 2\n'
  b'x := 1\x002\n')
w('nul_in_string.kp', b'-- a raw NUL byte inside a string literal is one byte of the string (as in Lua)\n'
  b's := "a\x00b"\nprint(len(s), s[1])  -- expect: 3 0\n')
w('nul_in_comment.kp', b'-- a NUL byte in a comment is ignored with the comment\n'
  b'-- comment \x00 here\nprint("after")  -- expect: after\n')
rng = random.Random(20240)
garbage = bytes(rng.randrange(256) for _ in range(64 * 1024)).replace(b'--', b'-_')
w('binary_garbage.kp', garbage + b'\n-- expect-error: error:\n-- expect-exit: 2\n')
rng = random.Random(7)
toks = ['(', ')', '[', ']', '{', '}', ':=', '=', '|', '_', '&', '$&', '~&', '.', ',', ':', '->',
        'if', 'else', 'for', 'in', 'while', 'x', 'Type', '"s"', '1', '2.5', '\n', '#(', 'keep', 'with', '..', '+']
w('token_soup.kp', ' '.join(rng.choice(toks) for _ in range(20000))
  + '\n-- expect-error: error:\n-- expect-exit: 2\n')
w('elf_header.kp', b'\x7fELF\x02\x01\x01\x00' + bytes(range(256)) * 16
  + b'\n-- expect-error: error:\n-- expect-exit: 2\n')
