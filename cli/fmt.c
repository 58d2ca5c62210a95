/*
 * fmt.c — the `keep fmt` command over the formatter (fmt/fmt.c).
 *
 *   keep fmt [file.kp...]          the canonical layout of each file (or of
 *                                  standard input) on standard output
 *   keep fmt -w file.kp...         rewrite each file in place when it changes
 *   keep fmt --check file.kp...    list the files that are not formatted;
 *                                  exit 1 if there is one
 *   keep fmt --tokens file.kp      the lexer's tokens with their classes (what
 *                                  editors/ grammars are tested against)
 *
 * A file that does not parse is not formatted: its first error is reported
 * and the exit status is 2 — except under --check, where it is reported as
 * skipped and does not fail the check (test files that are meant not to
 * parse stay as they are).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fmt/fmt.h"
#include "cli.h"

typedef struct Buf {
    char *p;
    size_t len, cap;
    bool oom;
} Buf;

static void buf_write(void *ud, const char *bytes, size_t len) {
    Buf *b = ud;
    if (b->oom) return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, bytes, len);
    b->len += len;
}

static void to_stderr(void *ud, const char *bytes, size_t len) {
    (void)ud;
    fwrite(bytes, 1, len, stderr);
}

static void to_stdout(void *ud, const char *bytes, size_t len) {
    (void)ud;
    fwrite(bytes, 1, len, stdout);
}

static int fmt_usage(void) {
    fprintf(stderr, "usage: keep fmt [-w | --check | --tokens] [file.kp...]\n");
    return 64;
}

int keep_fmt_main(int argc, char **argv) {
    bool check = false, write = false, tokens = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "--check")) check = true;
        else if (!strcmp(argv[i], "-w") || !strcmp(argv[i], "--write")) write = true;
        else if (!strcmp(argv[i], "--tokens")) tokens = true;
        else if (!strcmp(argv[i], "--")) { i++; break; }
        else return fmt_usage();
    }
    if ((check + write + tokens) > 1) return fmt_usage();
    static const char *const stdin_only[] = {"-"};
    const char *const *files = i < argc ? (const char *const *)argv + i : stdin_only;
    int nfiles = i < argc ? argc - i : 1;
    if ((write || check) && i >= argc) return fmt_usage();
    int rc = 0, unformatted = 0, skipped = 0;
    for (int k = 0; k < nfiles; k++) {
        const char *path = files[k];
        size_t len;
        char *text = keep_read_all(path, &len);
        if (!text) { rc = 64; continue; }
        const char *name = strcmp(path, "-") ? path : "<stdin>";
        if (tokens) {
            if (kp_fmt_tokens(text, len, to_stdout, NULL) != KP_FMT_OK) {
                fprintf(stderr, "%s: a lexical error\n", name);
                rc = 2;
            }
            free(text);
            continue;
        }
        Buf b = {0};
        int r = kp_fmt(name, text, len, buf_write, &b, to_stderr, NULL);
        if (r == KP_FMT_OK && b.oom) r = KP_FMT_NO_MEMORY;
        if (r == KP_FMT_NO_PARSE && check) {
            fprintf(stderr, "keep fmt: %s skipped: it does not parse\n", name);
            skipped++;
        } else if (r != KP_FMT_OK) {
            if (r == KP_FMT_NO_MEMORY) fprintf(stderr, "keep fmt: %s: out of memory\n", name);
            rc = 2;
        } else if (check) {
            if (b.len != len || memcmp(b.p, text, len) != 0) {
                printf("%s\n", name);
                unformatted++;
            }
        } else if (write) {
            if (b.len != len || memcmp(b.p, text, len) != 0) {
                FILE *f = fopen(path, "wb");
                if (!f || fwrite(b.p, 1, b.len, f) != b.len || fclose(f) != 0) {
                    fprintf(stderr, "keep fmt: cannot write '%s'\n", path);
                    rc = 64;
                }
            }
        } else {
            fwrite(b.p ? b.p : "", 1, b.len, stdout);
        }
        free(b.p);
        free(text);
    }
    fflush(stdout);
    if (check && (unformatted || skipped))
        fprintf(stderr, "keep fmt --check: %d of %d files not formatted, %d skipped (not parsing)\n", unformatted,
                nfiles, skipped);
    if (rc) return rc;
    return unformatted ? 1 : 0;
}
