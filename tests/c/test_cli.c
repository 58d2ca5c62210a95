/*
 * test_cli.c — the `keep` command line, after Lua's conventions (lua.c):
 * -e CODE (repeatable, before the script), `-` for standard input, -v /
 * --version, `--`, system.args and system.script, piped input run as one
 * program; and the man page (docs/keep.1) checked against --help, both
 * ways, so neither can list an option the other lacks.
 *
 * The keep binary is $KEEP_BIN, or ../keep next to this test binary.  Runs
 * from the repository root (docs/keep.1).  Every child runs under
 * `timeout`.  Prints "N passed, M failed".
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;
static char keep_bin[4096];
static char tmpdir[256];

static void check(bool ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL: %s\n", what);
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return; }
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

typedef struct Run {
    int rc;
    char out[16384];
    char err[16384];
} Run;

/* Runs `keep ARGS` in tmpdir with `input` (may be NULL: /dev/null) on
 * stdin; stdout and stderr captured separately. */
static void run(Run *r, const char *args, const char *input) {
    char in[600], outp[600], errp[600], cmd[8192];
    snprintf(in, sizeof in, "%s/stdin.txt", tmpdir);
    snprintf(outp, sizeof outp, "%s/out.txt", tmpdir);
    snprintf(errp, sizeof errp, "%s/err.txt", tmpdir);
    write_file(in, input ? input : "");
    snprintf(cmd, sizeof cmd, "cd '%s' && timeout 30 '%s' %s < '%s' > '%s' 2> '%s'", tmpdir, keep_bin, args,
             input ? in : "/dev/null", outp, errp);
    int st = system(cmd);
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char *o = read_file(outp);
    snprintf(r->out, sizeof r->out, "%s", o ? o : "");
    char *e = read_file(errp);
    snprintf(r->err, sizeof r->err, "%s", e ? e : "");
}

static void expect_run(const char *args, const char *input, int rc, const char *out, const char *err_has,
                       const char *what) {
    Run r;
    run(&r, args, input);
    bool ok = r.rc == rc && (!out || !strcmp(r.out, out)) && (err_has ? strstr(r.err, err_has) != NULL : !r.err[0]);
    check(ok, what);
    if (!ok)
        printf("    keep %s\n    exit %d (wanted %d)\n    stdout:\n%s\n    stderr:\n%s\n", args, r.rc, rc, r.out,
               r.err);
}

static void cli_tests(void) {
    char p[700];
    snprintf(p, sizeof p, "%s/s.kp", tmpdir);
    write_file(p, "print(\"script\", system.script, len(system.args))\n"
                  "for a in system.args { print(\"arg\", a) }\n");
    snprintf(p, sizeof p, "%s/-dash.kp", tmpdir);
    write_file(p, "print(\"dash\", system.script)\n");
    snprintf(p, sizeof p, "%s/usex.kp", tmpdir);
    write_file(p, "print(\"x is\", x)\n");

    expect_run("-e 'print(1)'", NULL, 0, "1\n", NULL, "-e runs code");
    expect_run("-e 'print(1)' -e 'print(2)'", NULL, 0, "1\n2\n", NULL, "-e is repeatable, in order");
    expect_run("-e 'x := 20' -e 'print(x + 1)'", NULL, 0, "21\n", NULL, "a later -e sees an earlier one's definitions");
    expect_run("-e 'print(\"first\")' s.kp a b", NULL, 0, "first\nscript s.kp 2\narg a\narg b\n", NULL,
               "-e runs before the script; system.script and system.args");
    expect_run("-e 'x := 7' usex.kp", NULL, 0, "x is 7\n", NULL, "the script sees what -e defined");
    expect_run("-e 'print(' s.kp", NULL, 2, "", "(command line):1:", "a -e compile error exits 2, the script does not run");
    expect_run("-e 'print(1 / 0)' s.kp", NULL, 1, "", "division by zero", "a -e runtime error exits 1, the script does not run");
    expect_run("-e", NULL, 64, "", "-e needs code", "-e without code is a usage error");
    expect_run("-e 'print(len(system.args), system.script == \"\")'", NULL, 0, "0 true\n", NULL,
               "with -e only: no arguments, system.script is \"\"");

    expect_run("s.kp", NULL, 0, "script s.kp 0\n", NULL, "a script without arguments");
    expect_run("s.kp -e x --", NULL, 0, "script s.kp 3\narg -e\narg x\narg --\n", NULL,
               "arguments after the script are the script's, even if they look like options");
    expect_run("-- -dash.kp", NULL, 0, "dash -dash.kp\n", NULL, "-- ends the options: a script named -dash.kp");
    expect_run("- one two", "print(system.script, system.args[0], system.args[1])\n", 0, "- one two\n", NULL,
               "- reads the script from standard input; system.script is \"-\"");
    expect_run("-e 'print(\"e\")' -", "print(\"stdin\")\n", 0, "e\nstdin\n", NULL, "-e then - (standard input)");
    expect_run("--bogus", NULL, 64, "", "unknown option '--bogus'", "an unknown option is a usage error");
    expect_run("missing.kp", NULL, 64, "", "cannot open 'missing.kp'", "a missing script is a usage error");

    /* -v / --version */
    Run r;
    run(&r, "-v", NULL);
    bool ok = r.rc == 0 && !strncmp(r.out, "Keep 0.1.0 (", 12) && (strstr(r.out, "gcc ") || strstr(r.out, "clang ")) &&
              (strstr(r.out, "computed goto on)\n") || strstr(r.out, "computed goto off)\n")) && !strchr(r.out, '\n')[1];
    check(ok, "-v prints the version, the compiler and the dispatch, then exits 0");
    if (!ok) printf("    exit %d, stdout: %s\n", r.rc, r.out);
    Run r2;
    run(&r2, "--version", NULL);
    check(r2.rc == 0 && !strcmp(r.out, r2.out), "--version is -v");
    run(&r2, "-v -e 'print(5)'", NULL);
    check(r2.rc == 0 && !strncmp(r2.out, r.out, strlen(r.out)) && !strcmp(r2.out + strlen(r.out), "5\n"),
          "-v with -e: the version, then the code runs");

    /* piped input is one program */
    expect_run("", "print(1)\nprint(2)\n", 0, "1\n2\n", NULL, "piped input runs as a program");
    expect_run("", "print(1)\nprint(2)\nx := 1 / 0\nprint(3)\n", 1, "1\n2\n", "<stdin>:3:8: runtime error: division by zero",
               "piped input: an error stops it, exit 1, with its true line number");
    expect_run("", "print(1)\nprint(+)\n", 2, "", "<stdin>:2:7: error:",
               "piped input is compiled whole: a compile error on line 2 runs nothing, exit 2");
    expect_run("", "1 + 1\n", 0, "", NULL, "piped input is not the REPL: a value is not printed");
    expect_run("", "f (n: Int) -> Int := {\n  return n + 1\n}\nprint(f(41), system.script)\n", 0, "42 -\n", NULL,
               "piped input: a multi-line function; system.script is \"-\"");
    expect_run("-i", "x := 2\nx * 21\n", 0, "42\n", NULL, "keep -i reads piped input as the REPL");
    expect_run("--emit=ownership -", "print(1)\n", 0, NULL, NULL, "--emit=ownership reads - (standard input)");
    expect_run("--emit=ownership -", "if false {\n    n : Int = \"five\"\n}\n", 2, "", "<stdin>:2:",
               "--emit=ownership of a program the compiler rejects: its diagnostics, exit 2");
    expect_run("--trace-ownership -", "xs := [1, 2]\nys := xs\nprint(len(ys))\n", 0, "2\n",
               "[own] <stdin>:2:7 move xs: List",
               "--trace-ownership prints each move as it runs, at its position");
    expect_run("--trace-ownership -", "n := 1\nm := n\nprint(m)\n", 0, "1\n", NULL,
               "--trace-ownership: an Int is copied, nothing is traced");
}

/* ------------------------------------------------------------ man page */

/* The options of --help: each "  -x, --long ARG   text" line gives its
 * words that start with '-'. */
static int help_options(const char *help, char opts[][64], int max) {
    int n = 0;
    for (const char *l = help; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
        if (strncmp(l, "  -", 3) != 0) continue;
        const char *p = l + 2;
        const char *end = strstr(p, "  "); /* the text starts after two spaces */
        const char *eol = strchr(p, '\n');
        if (!end || (eol && end > eol)) end = eol ? eol : p + strlen(p);
        while (p < end && n < max) {
            while (p < end && (*p == ' ' || *p == ',')) p++;
            size_t k = 0;
            while (p + k < end && p[k] != ' ' && p[k] != ',') k++;
            if (k && *p == '-' && k < 64) {
                memcpy(opts[n], p, k);
                opts[n][k] = 0;
                n++;
            }
            p += k;
        }
    }
    return n;
}

/* docs/keep.1's option headers (the lines after each .TP), with roff's
 * escapes removed: "\-" is '-', "\fB" and friends vanish, quotes vanish. */
static void man_headers(const char *man, char *out, size_t cap) {
    size_t o = 0;
    bool take = false;
    for (const char *l = man; *l && o + 2 < cap;) {
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        if (take && l[0] == '.') {
            const char *p = l;
            while (p < l + len && *p != ' ') p++; /* the macro name */
            for (; p < l + len && o + 2 < cap; p++) {
                if (p[0] == '\\' && p[1] == '-') { out[o++] = '-'; p++; }
                else if (p[0] == '\\' && p[1] == 'f') p += 2;
                else if (*p != '"') out[o++] = *p;
            }
            out[o++] = '\n';
        }
        take = !strncmp(l, ".TP", 3);
        l += len + (eol ? 1 : 0);
    }
    out[o] = 0;
}

static bool has_word(const char *text, const char *w) {
    size_t n = strlen(w);
    for (const char *p = strstr(text, w); p; p = strstr(p + 1, w)) {
        bool before = p == text || p[-1] == ' ' || p[-1] == '\n' || p[-1] == ',';
        char a = p[n];
        bool after = a == 0 || a == ' ' || a == '\n' || a == ',' || a == '=';
        if (w[n - 1] == '=') after = true;
        if (before && after) return true;
    }
    return false;
}

static void man_tests(void) {
    char *m = read_file("docs/keep.1");
    check(m != NULL, "docs/keep.1 is readable (run from the repository root)");
    if (!m) return;
    static char man[1 << 16], heads[1 << 15];
    snprintf(man, sizeof man, "%s", m);
    man_headers(man, heads, sizeof heads);
    Run r;
    run(&r, "--help", NULL);
    check(r.rc == 0 && strstr(r.out, "usage: keep"), "--help prints the usage, exit 0");
    static char opts[64][64];
    int n = help_options(r.out, opts, 64);
    check(n >= 14, "--help lists the options");
    for (int i = 0; i < n; i++) {
        char what[400];
        snprintf(what, sizeof what, "the man page lists %.63s (an option of --help)", opts[i]);
        check(has_word(heads, opts[i]), what);
    }
    /* and back: every option the man page lists is in --help */
    for (const char *l = heads; *l;) {
        const char *eol = strchr(l, '\n');
        size_t len = (size_t)(eol - l);
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)len, l);
        for (char *w = strtok(line, " ,"); w; w = strtok(NULL, " ,")) {
            if (w[0] != '-') continue;
            bool found = false;
            for (int i = 0; i < n; i++) found = found || !strcmp(opts[i], w);
            char what[400];
            snprintf(what, sizeof what, "--help lists %s (an option of the man page)", w);
            check(found, what);
        }
        l = eol + 1;
    }
    Run h2;
    run(&h2, "-h", NULL);
    check(h2.rc == 0 && !strcmp(h2.out, r.out), "-h is --help");
}

int main(int argc, char **argv) {
    (void)argc;
    const char *env = getenv("KEEP_BIN");
    char rel[4096];
    if (env && *env) {
        snprintf(rel, sizeof rel, "%s", env);
    } else {
        const char *slash = strrchr(argv[0], '/');
        if (slash)
            snprintf(rel, sizeof rel, "%.*s/../keep", (int)(slash - argv[0]), argv[0]);
        else
            snprintf(rel, sizeof rel, "build/keep");
    }
    if (!realpath(rel, keep_bin)) { /* absolute: the runs cd to tmpdir */
        printf("FAIL: no keep binary at %s (set KEEP_BIN)\n0 passed, 1 failed\n", rel);
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/keep_test_cli_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    cli_tests();
    man_tests();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
