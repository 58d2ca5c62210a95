/*
 * main.c — the `keep` command: runs a script file.
 *
 *   keep [options] file.kp [args...]
 *
 * Exit codes: 0 success, 1 runtime error (or leaks with --check-leaks),
 * 2 compile error, 64 usage error (bad option, unreadable file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keep.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: keep [options] file.kp [args...]\n"
            "options:\n"
            "  --check-leaks     fail (exit 1) if the script leaves script memory allocated\n"
            "  --debug-alloc     run on a debug root allocator (redzones, quarantine, leak report)\n"
            "  --mem-limit N     cap the script heap at N bytes (suffix K, M or G)\n"
            "  --stats           report every allocator's statistics at exit\n"
            "  --dump-bytecode   print the compiled bytecode to stderr\n"
            "  --help            this text\n"
            "exit codes: 0 ok, 1 runtime error, 2 compile error, 64 usage\n");
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

int main(int argc, char **argv) {
    KpConfig cfg = {0};
    cfg.allow_fs = true; /* the command line grants scripts the file system */
    bool check_leaks = false, dump = false;
    const char *file = NULL;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check-leaks")) check_leaks = true;
        else if (!strcmp(a, "--debug-alloc")) cfg.debug_alloc = true;
        else if (!strcmp(a, "--dump-bytecode")) dump = true;
        else if (!strcmp(a, "--stats")) cfg.stats = true;
        else if (!strcmp(a, "--mem-limit")) {
            if (i + 1 >= argc || (cfg.mem_limit = parse_size(argv[++i])) <= 0) {
                fprintf(stderr, "keep: --mem-limit needs a size such as 64M\n");
                return KP_ERR_USAGE;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
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
    if (!file) {
        usage(stderr);
        return KP_ERR_USAGE;
    }
    KpVM *vm = kp_vm_new(&cfg);
    if (!vm) {
        fprintf(stderr, "keep: out of memory\n");
        return KP_ERR_RUNTIME;
    }
    kp_vm_set_dump_bytecode(vm, dump);
    kp_vm_set_args(vm, argc - i, (const char *const *)argv + i);
    int rc = kp_vm_run_file(vm, file);
    if (rc == KP_ERR_USAGE) fprintf(stderr, "keep: %s\n", kp_vm_last_error(vm));
    if (kp_vm_finish(vm) != KP_OK && rc == KP_OK) rc = KP_ERR_RUNTIME;
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
