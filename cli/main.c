/*
 * main.c — the `keep` command: runs a script, code from the command line,
 * a program piped on standard input, or the REPL.  The conventions are
 * Lua's (lua.c), which a scripting user already knows:
 *
 *   keep [options] [-e CODE]... [script [args...]]
 *   keep fmt [-w | --check] [file.kp...]   the formatter (cli/fmt.c, fmt/)
 *
 *   -e CODE   runs CODE (repeatable; in order, before the script, on the
 *             same VM, so the script sees what CODE defined)
 *   script    a file, or `-` for standard input; system.script is its path
 *             ("-" for standard input), system.args the arguments after it
 *   -i        then the REPL (with a script: its definitions; alone: the REPL
 *             even when standard input is not a terminal)
 *   -v        the version and how the library was built (alone: then exit)
 *   --        ends the options: the next argument is the script
 *
 * With neither a script nor -e nor -v: the REPL when standard input is a
 * terminal, otherwise standard input is compiled and run as one program
 * (`cat f.kp | keep` is `keep f.kp`: true line numbers, errors exit
 * non-zero).
 *
 * Exit codes: 0 success, 1 runtime error (or leaks with --check-leaks),
 * 2 compile error, 64 usage error (bad option, unreadable file).  The REPL
 * exits 0 even when lines had errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/stat.h>

#include "keep.h"
#include "cli.h"
#include "repl.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: keep [options] [-e CODE]... [script [args...]]\n"
            "       keep fmt [-w | --check] [file.kp...]\n"
            "A script is a file, or - for standard input.  With no script and no -e:\n"
            "the REPL on a terminal, otherwise standard input is run as one program.\n"
            "options:\n"
            "  -e CODE           run CODE before the script (repeatable)\n"
            "  -i                after the script (or -e), start the REPL with its definitions\n"
            "  -v, --version     print the version and build (alone: then exit)\n"
            "  --                end of options: the next argument is the script\n"
            "  --check-leaks     fail (exit 1) if the script leaves script memory allocated\n"
            "  --debug-alloc     run on a debug root allocator (redzones, quarantine, leak report)\n"
            "  --mem-limit N     cap the script heap at N bytes (suffix K, M or G)\n"
            "  --stats           report every allocator's statistics at exit\n"
            "  --threads N       parallel calls use at most N worker threads (default: the cores)\n"
            "  --collect-cycles  deinitialize unreachable keep cycles (default: report them)\n"
            "  --dump-bytecode   print the compiled bytecode to stderr\n"
            "  --emit=ownership  print the script with the moves, drops and keeps the compiler\n"
            "                    inserts listed under each line; do not run it\n"
            "  --trace-ownership print every move, drop and keep to stderr as it runs\n"
            "  -h, --help        this text\n"
            "keep fmt prints each file in the canonical layout (-w rewrites it; --check\n"
            "lists the files that are not formatted and exits 1 if there is one).\n"
            "REPL commands: :help, :quit, :stats, :type, :ownership (Ctrl-C interrupts a line)\n"
            "exit codes: 0 ok, 1 runtime error, 2 compile error, 64 usage (the REPL: 0); exit(N) in a script: N\n");
}

static void version(void) {
    printf("Keep %s (%s)\n", KEEP_VERSION, kp_build_info());
    fflush(stdout);
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

/* The whole of `path` ("-": standard input) into a malloc'd buffer.
 * Returns NULL (message printed) when it cannot be read. */
char *keep_read_all(const char *path, size_t *len_out) {
    bool is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "keep: cannot open '%s'\n", path);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(text, cap);
            if (!p) { ok = false; break; }
            text = p;
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    if (ferror(f)) ok = false;
    if (!is_stdin) fclose(f);
    if (!ok) {
        free(text);
        fprintf(stderr, "keep: cannot read '%s'\n", is_stdin ? "standard input" : path);
        return NULL;
    }
    if (!text) text = calloc(1, 1);
    if (!text) { fprintf(stderr, "keep: out of memory\n"); return NULL; }
    text[len] = 0;
    *len_out = len;
    return text;
}

/* --emit=ownership: the script's text through kp_vm_emit_ownership. */
static int emit_ownership(KpVM *vm, const char *path) {
    size_t len;
    char *text = keep_read_all(path, &len);
    if (!text) return KP_ERR_USAGE;
    int rc = kp_vm_emit_ownership(vm, !strcmp(path, "-") ? "<stdin>" : path, text, len, write_stdout, NULL);
    free(text);
    fflush(stdout);
    return rc;
}

/* Runs the script at `path` ("-": standard input, named <stdin> in
 * messages). */
static int run_script(KpVM *vm, const char *path) {
    if (strcmp(path, "-") != 0) {
        int rc = kp_vm_run_file(vm, path);
        if (rc == KP_ERR_USAGE) fprintf(stderr, "keep: %s\n", kp_vm_last_error(vm));
        return rc;
    }
    size_t len;
    char *text = keep_read_all(path, &len);
    if (!text) return KP_ERR_USAGE;
    int rc = kp_vm_run_string(vm, "<stdin>", text, len);
    free(text);
    return rc;
}

/* KpConfig.load_module for the command line: a module is the file of its
 * name (resolved by the VM against the importing file's directory, or
 * the current directory for the REPL and -e), read in pieces. */
static bool load_module_file(void *ud, const char *name, KpWriteFn write, void *sink, const char **why) {
    (void)ud;
    struct stat st;
    if (stat(name, &st) != 0) {
        *why = strerror(errno);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        return false;
    }
    FILE *f = fopen(name, "rb");
    if (!f) {
        *why = strerror(errno);
        return false;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) write(sink, buf, n);
    bool err = ferror(f);
    fclose(f);
    if (err) *why = "read error";
    return !err;
}

#define MAX_E 64

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fmt")) return keep_fmt_main(argc - 1, argv + 1);
    KpConfig cfg = {0};
    cfg.allow_fs = true; /* the command line grants scripts the file system, */
    cfg.allow_random = true; /* the system's random numbers */
    cfg.allow_env = true;    /* and the environment variables */
    cfg.load_module = load_module_file; /* imports: files */
    bool check_leaks = false, dump = false, interactive = false, emit = false, show_version = false;
    const char *file = NULL;
    const char *code[MAX_E];
    int ncode = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check-leaks")) check_leaks = true;
        else if (!strcmp(a, "--debug-alloc")) cfg.debug_alloc = true;
        else if (!strcmp(a, "--dump-bytecode")) dump = true;
        else if (!strcmp(a, "--stats")) cfg.stats = true;
        else if (!strcmp(a, "--collect-cycles")) cfg.collect_cycles = true;
        else if (!strcmp(a, "-i")) interactive = true;
        else if (!strcmp(a, "-v") || !strcmp(a, "--version")) show_version = true;
        else if (!strcmp(a, "--emit=ownership")) emit = true;
        else if (!strcmp(a, "--trace-ownership")) cfg.trace_ownership = true;
        else if (!strcmp(a, "-e")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "keep: -e needs code, as in: keep -e 'print(1)'\n");
                return KP_ERR_USAGE;
            }
            if (ncode == MAX_E) {
                fprintf(stderr, "keep: at most %d -e options\n", MAX_E);
                return KP_ERR_USAGE;
            }
            code[ncode++] = argv[++i];
        } else if (!strcmp(a, "--mem-limit")) {
            if (i + 1 >= argc || (cfg.mem_limit = parse_size(argv[++i])) <= 0) {
                fprintf(stderr, "keep: --mem-limit needs a size such as 64M\n");
                return KP_ERR_USAGE;
            }
        } else if (!strcmp(a, "--threads")) {
            char *endp = NULL;
            long n = i + 1 < argc ? strtol(argv[++i], &endp, 10) : 0;
            if (!endp || *endp || n < 1 || n > 64) {
                fprintf(stderr, "keep: --threads needs a number of workers from 1 to 64\n");
                return KP_ERR_USAGE;
            }
            cfg.threads = (int)n;
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
            file = a; /* a script path, or "-" */
            i++;
            break;
        }
    }
    if (show_version) version();
    if (!file && emit) {
        fprintf(stderr, "keep: --emit=ownership needs a script\n");
        usage(stderr);
        return KP_ERR_USAGE;
    }
    /* nothing to run: the REPL on a terminal, else stdin as a program */
    if (!file && ncode == 0 && !interactive) {
        if (show_version) return 0;
        if (!isatty(STDIN_FILENO)) file = "-";
    }
    bool repl = interactive || (!file && ncode == 0);
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
    if (kp_vm_set_args(vm, file ? argc - i : 0, (const char *const *)argv + i) != KP_OK ||
        kp_vm_set_script(vm, file ? file : "") != KP_OK) {
        fprintf(stderr, "keep: out of memory\n");
        kp_vm_free(vm);
        return KP_ERR_RUNTIME;
    }
    int rc = KP_OK;
    for (int k = 0; k < ncode && rc == KP_OK; k++) rc = kp_vm_run_string(vm, "(command line)", code[k], strlen(code[k]));
    if (rc == KP_OK && file) {
        rc = run_script(vm, file);
        if (rc == KP_ERR_USAGE) {
            kp_vm_free(vm);
            return rc;
        }
    }
    if (repl && ((rc == KP_OK || interactive) && rc != KP_EXIT)) rc = keep_repl(vm);
    /* exit(code): the frames have unwound; the top-level variables are
     * deinitialized here, then the process exits with the code */
    int exit_code = rc == KP_EXIT ? kp_vm_exit_code(vm) : -1;
    if (kp_vm_finish(vm) != KP_OK && rc == KP_OK && !repl) rc = KP_ERR_RUNTIME;
    fflush(stdout);
    if (check_leaks && rc != KP_ERR_USAGE && rc != KP_ERR_COMPILE) {
        KpHeapStats st;
        kp_vm_heap_stats(vm, &st);
        if (st.live_count != 0) {
            fprintf(stderr, "keep: leak check failed: %lld bytes in %lld allocations were not freed\n",
                    (long long)st.live_bytes, (long long)st.live_count);
            if (rc == KP_OK || rc == KP_EXIT) rc = KP_ERR_RUNTIME, exit_code = -1;
        }
    }
    kp_vm_free(vm);
    return exit_code >= 0 ? exit_code : rc;
}
