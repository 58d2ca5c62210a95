/*
 * repl.h — the interactive REPL of the `keep` command (cli/repl.c).
 */
#ifndef KEEP_CLI_REPL_H
#define KEEP_CLI_REPL_H

#include "keep.h"

/* Runs the REPL on `vm` until :quit or the end of input.  With a terminal
 * on stdin it uses libedit (prompts, line editing, history); otherwise it
 * reads lines silently (scriptable: `echo 'print(1+2)' | keep`).  Returns
 * the exit code of the REPL (0).  The caller frees the VM. */
int keep_repl(KpVM *vm);

/* The write_err callback the REPL's VM should use: flushes stdout first so
 * that output and diagnostics stay in order when both are piped. */
void keep_repl_write_err(void *ud, const char *bytes, size_t len);

#endif
