/*
 * main.c — the `keep` command: runs a script file, or the REPL.
 *
 *   keep [options] file.kp [args...]    run the script
 *   keep [options]                      the REPL (cli/repl.c)
 *   keep [options] -i file.kp [args...] run the script, then the REPL
 *
 * Exit codes: 0 success, 1 runtime error (or leaks with --check-leaks),
 * 2 compile error, 64 usage error (bad option, unreadable file).  The REPL
 * exits 0 even when lines had errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keep.h"
#include "repl.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: keep [options] file.kp [args...]   run a script\n"
            "       keep [options]                     start the REPL\n"
            "       keep [options] -i file.kp [args...] run a script, then start the REPL\n"
            "options:\n"
            "  -i                run the file, then start the REPL with its definitions\n"
            "  --check-leaks     fail (exit 1) if the script leaves script memory allocated\n"
            "  --debug-alloc     run on a debug root allocator (redzones, quarantine, leak report)\n"
            "  --mem-limit N     cap the script heap at N bytes (suffix K, M or G)\n"
            "  --stats           report every allocator's statistics at exit\n"
            "  --collect-cycles  deinitialize unreachable keep cycles (default: report them)\n"
            "  --dump-bytecode   print the compiled bytecode to stderr\n"
            "  --emit=ownership  print the file with the compiler-inserted deinits, moves,\n"
            "                    defers and reference counting written out; do not run it\n"
            "  --help            this text\n"
            "REPL commands: :help, :quit, :stats, :ownership (Ctrl-C interrupts a line)\n"
            "exit codes: 0 ok, 1 runtime error, 2 compile error, 64 usage (the REPL: 0)\n");
}

static int64_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return -1;
    switch (*end) {
    case 'k': case 'K': v *= 1024; end++; break;
    case 'm': case 'M': v *= 1024 * 1024; end++; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
    }
    if (*end) return -1;
    return (int64_t)v;
}

static void write_stdout(void *ud, const char *bytes, size_t len) {
    (void)ud;
    fwrite(bytes, 1, len, stdout);
}

/* --emit=ownership: the file's text through kp_vm_emit_ownership. */
static int emit_ownership(KpVM *vm, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "keep: cannot open '%s'\n", path);
        return KP_ERR_USAGE;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            char *p = realloc(text, cap);
            if (!p) { free(text); fclose(f); fprintf(stderr, "keep: out of memory\n"); return KP_ERR_RUNTIME; }
            text = p;
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(text);
        fprintf(stderr, "keep: cannot read '%s'\n", path);
        return KP_ERR_USAGE;
    }
    int rc = kp_vm_emit_ownership(vm, path, text ? text : "", len, write_stdout, NULL);
    free(text);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv) {
    KpConfig cfg = {0};
    cfg.allow_fs = true; /* the command line grants scripts the file system */
    bool check_leaks = false, dump = false, interactive = false, emit = false;
    const char *file = NULL;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check-leaks")) check_leaks = true;
        else if (!strcmp(a, "--debug-alloc")) cfg.debug_alloc = true;
        else if (!strcmp(a, "--dump-bytecode")) dump = true;
        else if (!strcmp(a, "--stats")) cfg.stats = true;
        else if (!strcmp(a, "--collect-cycles")) cfg.collect_cycles = true;
        else if (!strcmp(a, "-i")) interactive = true;
        else if (!strcmp(a, "--emit=ownership")) emit = true;
        else if (!strcmp(a, "--mem-limit")) {
            if (i + 1 >= argc || (cfg.mem_limit = parse_size(argv[++i])) <= 0) {
                fprintf(stderr, "keep: --mem-limit needs a size such as 64M\n");
                return KP_ERR_USAGE;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--")) {
            if (i + 1 < argc) file = argv[++i];
            i++;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "keep: unknown option '%s'\n", a);
            usage(stderr);
            return KP_ERR_USAGE;
        } else {
            file = a;
            i++;
            break;
        }
    }
    if (!file && (interactive || emit)) {
        fprintf(stderr, "keep: %s needs a file\n", emit ? "--emit=ownership" : "-i");
        usage(stderr);
        return KP_ERR_USAGE;
    }
    bool repl = !file || interactive;
    if (repl) cfg.write_err = keep_repl_write_err; /* keeps stdout and stderr in order */
    KpVM *vm = kp_vm_new(&cfg);
    if (!vm) {
        fprintf(stderr, "keep: out of memory\n");
        return KP_ERR_RUNTIME;
    }
    kp_vm_set_dump_bytecode(vm, dump);
    if (emit) {
        int rc = emit_ownership(vm, file);
        kp_vm_free(vm);
        return rc;
    }
    kp_vm_set_args(vm, file ? argc - i : 0, (const char *const *)argv + i);
    int rc = KP_OK;
    if (file) {
        rc = kp_vm_run_file(vm, file);
        if (rc == KP_ERR_USAGE) {
            fprintf(stderr, "keep: %s\n", kp_vm_last_error(vm));
            kp_vm_free(vm);
            return rc;
        }
    }
    if (repl) rc = keep_repl(vm);
    if (kp_vm_finish(vm) != KP_OK && rc == KP_OK && !repl) rc = KP_ERR_RUNTIME;
    fflush(stdout);
    if (check_leaks && rc != KP_ERR_USAGE && rc != KP_ERR_COMPILE) {
        KpHeapStats st;
        kp_vm_heap_stats(vm, &st);
        if (st.live_count != 0) {
            fprintf(stderr, "keep: leak check failed: %lld bytes in %lld allocations were not freed\n",
                    (long long)st.live_bytes, (long long)st.live_count);
            if (rc == KP_OK) rc = KP_ERR_RUNTIME;
        }
    }
    kp_vm_free(vm);
    return rc;
}
