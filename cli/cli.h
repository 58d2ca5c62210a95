/*
 * cli.h — what the parts of the `keep` command share (cli/main.c,
 * cli/fmt.c).
 */
#ifndef KEEP_CLI_H
#define KEEP_CLI_H

#include <stddef.h>

/* The whole of `path` ("-": standard input) in a malloc'd, NUL-terminated
 * buffer (the caller frees it), its length in *len.  NULL, with a message
 * on stderr, when it cannot be read. */
char *keep_read_all(const char *path, size_t *len);

/* `keep fmt ARGS` (argv[0] is "fmt"); returns the exit status. */
int keep_fmt_main(int argc, char **argv);

#endif
