#!/usr/bin/env node
// editors/test.js KEEP_BINARY NODE_MODULES FILE... — tokenizes every file
// with the TextMate grammar (editors/keep.tmLanguage.json) through
// vscode-textmate and vscode-oniguruma, headless, and checks each token
// the real lexer gives (`keep fmt --tokens`, lexer/lexer.re) against the
// scopes the grammar put on its bytes: keywords, constants, #directives,
// strings, numbers, comments and operators get their scopes, and a plain
// name gets none of those.  Prints "N passed, M failed" (one check per
// file, the first mismatches of a file listed).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const [keep, modules, ...files] = process.argv.slice(2);
const vsctm = require(path.resolve(modules, 'vscode-textmate'));
const oniguruma = require(path.resolve(modules, 'vscode-oniguruma'));

const WANT = {
  keyword: /^keyword\.(control|operator\.word|other\.ownership)\.keep$/,
  constant: /^constant\.language\.keep$/,
  directive: /^keyword\.other\.directive\.keep$/,
  string: /^string\.quoted\.double\.keep$/,
  number: /^constant\.numeric\.\w+\.keep$/,
  comment: /^comment\.line\.double-dash\.keep$/,
  operator: /^keyword\.operator\.keep$/,
};
const NOT_A_NAME = /^(keyword|string|comment|constant)\./;

async function main() {
  const wasm = fs.readFileSync(path.resolve(modules, 'vscode-oniguruma/release/onig.wasm')).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (p) => new oniguruma.OnigScanner(p),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () =>
      vsctm.parseRawGrammar(fs.readFileSync(path.join(__dirname, 'keep.tmLanguage.json'), 'utf8'), 'keep.tmLanguage.json'),
  });
  const grammar = await registry.loadGrammar('source.keep');
  let pass = 0, fail = 0;
  const seen = {};
  for (const file of files) {
    const bytes = fs.readFileSync(file);
    let dump;
    try {
      dump = execFileSync(keep, ['fmt', '--tokens', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch (e) {
      continue; // a lexical error (robustness tests): nothing to compare
    }
    // the file's lines as bytes and as strings (TextMate counts UTF-16 units)
    const lines = [];
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        lines.push(bytes.subarray(start, i));
        start = i + 1;
      }
    }
    const scopesAt = [];
    let state = vsctm.INITIAL;
    for (const lb of lines) {
      const text = lb.toString('utf8');
      const r = grammar.tokenizeLine(text, state);
      state = r.ruleStack;
      scopesAt.push({ text, tokens: r.tokens });
    }
    const errors = [];
    for (const row of dump.split('\n')) {
      if (!row) continue;
      const [line, col, len, cls] = row.split(' ');
      if (cls === 'newline' || cls === 'punctuation') continue;
      seen[cls] = (seen[cls] || 0) + 1;
      const L = scopesAt[+line - 1];
      const lb = lines[+line - 1];
      // the lexer counts columns of line 1 after a byte-order mark
      const c0 = +col - 1 + (+line === 1 && lb[0] === 0xef && lb[1] === 0xbb && lb[2] === 0xbf ? 3 : 0);
      const from = lb.subarray(0, c0).toString('utf8').length;
      const to = from + lb.subarray(c0, c0 + +len).toString('utf8').length;
      for (const t of L.tokens) {
        if (t.endIndex <= from || t.startIndex >= to) continue;
        const scopes = t.scopes.slice(1);
        const ok = cls === 'name' ? !scopes.some((s) => NOT_A_NAME.test(s)) : scopes.some((s) => WANT[cls].test(s));
        if (!ok) {
          errors.push(`${file}:${line}:${col}: ${cls} '${L.text.slice(from, to)}' has scopes [${scopes.join(' ')}]`);
          break;
        }
      }
    }
    if (errors.length === 0) pass++;
    else {
      fail++;
      for (const e of errors.slice(0, 5)) console.log('FAIL: ' + e);
    }
  }
  // the files must have exercised every class
  for (const cls of ['keyword', 'constant', 'directive', 'string', 'number', 'comment', 'operator', 'name']) {
    if (seen[cls]) pass++;
    else {
      fail++;
      console.log(`FAIL: no ${cls} token in the files`);
    }
  }
  console.log(`${pass} passed, ${fail} failed`);
  process.exit(fail ? 1 : 0);
}
main().catch((e) => {
  console.log('FAIL: ' + (e.stack || e));
  console.log('0 passed, 1 failed');
  process.exit(1);
});
