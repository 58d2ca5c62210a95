/*
 * oom.c — out-of-memory injection over scripts of the suite (`make
 * test-oom`).
 *
 *     oom [-v] [-max N] [-skip-big] SCRIPT.kp ...
 *
 * (-v: a line per script; -max: the most allocations a script may make,
 * 5000 by default, since the runs grow with its square — bigger ones fail,
 * or with -skip-big are skipped; so are scripts that run the REPL after
 * themselves (`-- flags: -i`), which this driver cannot give: the REPL's
 * lines are chunks like a host's, covered by the embedding API's runs.)
 *
 * For each script: a clean run on a counting host allocator gives the
 * reference (its output, its result, and T, the number of allocation
 * requests the run makes — kp_vm_run_string then kp_vm_finish, which runs
 * the top-level deinits).  Then for every N in 0..T-1, in two modes, a new
 * VM runs the script again with a host allocator that refuses request N
 * ("once": a transient failure; the VM may absorb it) or request N and
 * every later one ("from": the machine is out of memory).  Each run must:
 *
 *   - end in an error whose kp_vm_last_error says "out of memory", with
 *     "out of memory" also on write_err — or succeed with exactly the
 *     reference's output, or fail as the reference did, at the same
 *     file:line:col (the run and kp_vm_finish are judged each on its own);
 *   - print, up to the first refused request, a prefix of the reference's
 *     output (after it, the unwinding runs deinits and defers early, on
 *     values the failure left half-made: that part is not compared);
 *   - leave the VM able to run a follow-up script once memory is back;
 *     (a script with a `catch` may catch the refusal: after it, its result
 *     and output are its own, and only the other checks apply)
 *   - return every block and byte to the host allocator at kp_vm_free.
 *
 * Then kp_vm_new itself is made to fail at each of its requests: it must
 * return NULL with nothing left allocated, or a working VM.
 *
 * Everything runs in this one process (a VM per N, freed at once), so a
 * crash stops the run: the handler names the script, N and mode first.
 * A script's `-- flags:` line is honoured for --collect-cycles,
 * --debug-alloc, --mem-limit and --threads (parallel calls run with one
 * worker otherwise); scripts with other flags are refused.
 *
 * Prints one line per failure (the first few per script in full), then
 * "test-oom: S scripts, R runs (A allocation points), F failures".
 */
#include <keep.h>

#include "../c/counting.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ the host */

typedef struct Out {
    char *data;
    size_t len, cap;
} Out;

typedef struct Host {
    Counting mem;       /* the host allocator (tests/c/counting.h) */
    size_t out_at_refusal; /* output length at the first refusal */
    Out out, err;
} Host;

static void out_add(Out *o, const char *s, size_t n) {
    if (n == 0) return;
    if (o->len + n + 1 > o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 4096;
        while (ncap < o->len + n + 1) ncap *= 2;
        char *d = realloc(o->data, ncap);
        if (!d) { fprintf(stderr, "oom: the driver itself is out of memory\n"); exit(2); }
        o->data = d;
        o->cap = ncap;
    }
    memcpy(o->data + o->len, s, n);
    o->len += n;
    o->data[o->len] = 0;
}

static void out_clear(Out *o) {
    o->len = 0;
    if (o->data) o->data[0] = 0;
}

/* the output printed up to the first refused request */
static void note_refusal(void *ctx) {
    Host *h = ctx;
    if (h->mem.refused == 1) h->out_at_refusal = h->out.len;
}

static void host_out(void *ud, const char *b, size_t n) { out_add(&((Host *)ud)->out, b, n); }
static void host_err(void *ud, const char *b, size_t n) { out_add(&((Host *)ud)->err, b, n); }

/* ------------------------------------------------------------ scripts */

typedef struct Script {
    const char *path;
    char *text;
    size_t len;
    KpConfig base; /* from its -- flags: line */
    bool dump_bytecode; /* --dump-bytecode */
    bool repl;          /* -i: the REPL after the script (skipped)   */
    bool catches;       /* has a try/catch: it may catch the refusal */
} Script;

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    Out o = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out_add(&o, buf, n);
    fclose(f);
    out_add(&o, "", 0);
    if (!o.data) o.data = calloc(1, 1);
    *len = o.len;
    return o.data;
}

static bool parse_flags(Script *s) {
    memset(&s->base, 0, sizeof s->base);
    /* one worker unless the script asks for more: the run's allocation
     * requests come in the same order every time (with several workers
     * they interleave differently from run to run) */
    s->base.threads = 1;
    s->dump_bytecode = false;
    const char *f = strstr(s->text, "-- flags: ");
    if (!f) return true;
    f += strlen("-- flags: ");
    char line[256];
    size_t n = strcspn(f, "\n");
    if (n >= sizeof line) return false;
    memcpy(line, f, n);
    line[n] = 0;
    for (char *t = strtok(line, " \t"); t; t = strtok(NULL, " \t")) {
        if (!strcmp(t, "--collect-cycles")) s->base.collect_cycles = true;
        else if (!strcmp(t, "--debug-alloc")) s->base.debug_alloc = true;
        else if (!strcmp(t, "--stats")) s->base.stats = true;
        else if (!strcmp(t, "--dump-bytecode")) s->dump_bytecode = true;
        else if (!strcmp(t, "-i")) s->repl = true;
        else if (!strcmp(t, "--threads")) {
            char *v = strtok(NULL, " \t");
            if (!v || atoi(v) < 1) return false;
            s->base.threads = atoi(v);
        } else if (!strcmp(t, "--mem-limit")) {
            char *v = strtok(NULL, " \t");
            if (!v) return false;
            char *end;
            double x = strtod(v, &end);
            if (*end == 'K' || *end == 'k') x *= 1024;
            else if (*end == 'M' || *end == 'm') x *= 1024 * 1024;
            else if (*end == 'G' || *end == 'g') x *= 1024.0 * 1024 * 1024;
            s->base.mem_limit = (int64_t)x;
        } else {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------ one run */

static const char follow_up[] = "print(\"follow-up\", 40 + 2, len([1, 2, 3]), \"ab\" + str(7))\n";
static const char follow_up_out[] = "follow-up 42 3 ab7\n";

static volatile const char *crash_script;
static volatile long crash_n;
static volatile int crash_mode;

static void say_where(const char *what) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "\noom: %s in %s at N=%ld (%s)\n", what, (const char *)crash_script, crash_n,
                     crash_mode ? "from N on" : "only N");
    if (n > 0) { ssize_t w = write(2, buf, (size_t)n); (void)w; }
}

/* A crash names the run, then goes on to the handler there was before
 * (a sanitizer's, which reports it) or the default. */
static struct sigaction prev_segv, prev_bus, prev_abrt, prev_fpe;

static void on_crash(int sig) {
    say_where("CRASH");
    struct sigaction *prev = sig == SIGSEGV ? &prev_segv : sig == SIGBUS ? &prev_bus : sig == SIGABRT ? &prev_abrt : &prev_fpe;
    sigaction(sig, prev, NULL);
    if (sig == SIGABRT) raise(sig); /* (a fault re-runs the instruction and faults again) */
}

/* Under AddressSanitizer, its reports end the process through here. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));
static void on_sanitizer_death(void) { say_where("sanitizer report"); }

static void catch_crashes(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sigaction(SIGSEGV, &sa, &prev_segv);
    sigaction(SIGBUS, &sa, &prev_bus);
    sigaction(SIGABRT, &sa, &prev_abrt);
    sigaction(SIGFPE, &sa, &prev_fpe);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(on_sanitizer_death);
}

typedef struct Result {
    int rc, finish_rc;
    long requests;         /* during run + finish */
    Out out;               /* what the script printed */
    char last_error[1024]; /* of the run */
    char finish_error[1024]; /* of kp_vm_finish */
} Result;

/* (the output buffers are kept from run to run; the counts start at 0) */
static void host_reset(Host *h) {
    Out out = h->out, err = h->err;
    memset(h, 0, sizeof *h);
    h->out = out;
    h->err = err;
    out_clear(&h->out);
    out_clear(&h->err);
    h->mem.on_refuse = note_refusal;
    h->mem.ctx = h;
}

static KpVM *new_vm(Host *h, const Script *s) {
    host_reset(h);
    KpConfig cfg = s->base;
    cfg.alloc = counting_alloc;
    cfg.alloc_ud = &h->mem;
    cfg.write_out = host_out;
    cfg.write_err = host_err;
    cfg.ud = h;
    cfg.allow_fs = true;
    cfg.stack_values = 80000; /* the minimum is ~70k; small VMs are cheap */
    KpVM *vm = kp_vm_new(&cfg);
    if (vm && s->dump_bytecode) kp_vm_set_dump_bytecode(vm, true);
    return vm;
}

/* Runs the script (then its top-level deinits) with request `fail_at` on
 * refused.  The VM is left alive for the caller. */
static KpVM *run_once(Host *h, const Script *s, long fail_at, bool once, Result *r) {
    KpVM *vm = new_vm(h, s);
    if (!vm) return NULL;
    out_clear(&h->out);
    out_clear(&h->err);
    h->mem.requests = 0;
    h->mem.fail = fail_at >= 0;
    h->mem.fail_at = fail_at;
    h->mem.once = once;
    r->rc = kp_vm_run_string(vm, s->path, s->text, s->len);
    snprintf(r->last_error, sizeof r->last_error, "%s", kp_vm_last_error(vm));
    r->finish_rc = kp_vm_finish(vm);
    snprintf(r->finish_error, sizeof r->finish_error, "%s", r->finish_rc ? kp_vm_last_error(vm) : "");
    r->requests = h->mem.requests;
    h->mem.fail = false;
    return vm;
}

/* Do two messages "file:line:col: ..." have the same file:line:col? */
static bool same_place(const char *a, const char *b) {
    const char *pa = strstr(a, ": "), *pb = strstr(b, ": ");
    if (!pa || !pb) return !strcmp(a, b);
    return pa - a == pb - b && !memcmp(a, b, (size_t)(pa - a));
}

static long failures, runs, points;
static long max_requests = 5000; /* -max N */
static int skip_big;             /* -skip-big: skip scripts over it instead of failing */
static int verbose;
static long show_n = -1; /* OOM_SHOW=N:MODE prints that run (MODE 0: only N, 1: from N on) */
static int show_mode;

static void report(const Script *s, long n, bool once, const char *what, const Host *h, const Result *r, int *shown) {
    failures++;
    if ((*shown)++ >= 3) return;
    fprintf(stderr, "FAIL: %s at N=%ld (%s): %s\n", s->path, n, once ? "only N" : "from N on", what);
    fprintf(stderr, "    rc %d, last error \"%.300s\"; finish %d \"%.300s\"\n", r->rc, r->last_error, r->finish_rc,
            r->finish_error);
    fprintf(stderr, "    printed: \"%.300s\"\n", h->out.data ? h->out.data : "");
    fprintf(stderr, "    write_err: \"%.300s\"\n", h->err.data ? h->err.data : "");
}

static void check_script(Script *s) {
    Host h = {0};
    Result ref = {0};
    /* (a script over the limit is stopped by refusing the request past it) */
    KpVM *vm = run_once(&h, s, max_requests + 1, false, &ref);
    if (!vm) { fprintf(stderr, "FAIL: %s: kp_vm_new failed\n", s->path); failures++; return; }
    Out want = {0};
    out_add(&want, h.out.data ? h.out.data : "", h.out.len);
    if (!want.data) want.data = calloc(1, 1);
    long total = ref.requests;
    kp_vm_free(vm);
    if (total > max_requests) {
        /* quadratic in T: a script this big belongs in another list */
        printf("%-50s more than %ld allocations, %s\n", s->path, max_requests,
               skip_big ? "skipped" : "FAILED");
        if (!skip_big) failures++;
        free(want.data);
        free(h.out.data);
        free(h.err.data);
        return;
    }
    int shown = 0;
    long script_runs = 0;
    crash_script = s->path;
    for (int mode = 0; mode < 2; mode++) {
        bool once = mode == 0;
        crash_mode = mode;
        for (long n = 0; n < total; n++) {
            crash_n = n;
            Result r = {0};
            vm = run_once(&h, s, n, once, &r);
            runs++;
            script_runs++;
            if (!vm) { report(s, n, once, "kp_vm_new failed", &h, &r, &shown); continue; }
            const char *out = h.out.data ? h.out.data : "";
            if (show_n == n && show_mode == mode) {
                int keep = shown;
                shown = 0;
                report(s, n, once, "(shown as asked by OOM_SHOW)", &h, &r, &shown);
                failures--;
                shown = keep;
            }
            bool failed_run = r.rc != KP_OK || r.finish_rc != KP_OK;
            /* the script's own error, at the same place (its message may
             * say less when the details could not be recorded) */
            bool run_as_ref = r.rc == ref.rc && (r.rc == KP_OK || same_place(r.last_error, ref.last_error));
            bool finish_as_ref = r.finish_rc == ref.finish_rc && (r.finish_rc == KP_OK || !strcmp(r.finish_error, ref.finish_error));
            bool said_oom = h.err.data && strstr(h.err.data, "out of memory");
            /* a script with a try block may catch the out of memory and go
             * on its own way: after the refusal, anything but a crash, a
             * leak or a broken VM is its business */
            bool caught = s->catches && h.mem.refused;
            if (caught)
                ;
            else if (!run_as_ref && !strstr(r.last_error, "out of memory"))
                report(s, n, once, "the run's error does not say out of memory", &h, &r, &shown);
            else if (!finish_as_ref && !strstr(r.finish_error, "out of memory") && (run_as_ref || r.finish_rc != KP_OK))
                /* (a run cut short by memory leaves less to deinitialize:
                 * its kp_vm_finish may well succeed) */
                report(s, n, once, "kp_vm_finish's error does not say out of memory", &h, &r, &shown);
            else if ((!run_as_ref || !finish_as_ref) && !said_oom)
                report(s, n, once, "write_err was not told out of memory", &h, &r, &shown);
            else if (!failed_run && strcmp(out, want.data) != 0)
                report(s, n, once, "wrong output", &h, &r, &shown);
            /* the output up to the first refusal: a prefix of the reference
             * (after it, the unwinding runs deinits and defers early, on
             * values the failure left half-made: not compared) */
            size_t cut = h.mem.refused ? h.out_at_refusal : h.out.len;
            if (cut > want.len || memcmp(out, want.data, cut) != 0)
                report(s, n, once, "printed something the clean run did not print (before the failure)", &h, &r, &shown);
            /* memory is back: the same VM runs a follow-up script */
            out_clear(&h.out);
            int frc = kp_vm_run_string(vm, "follow-up.kp", follow_up, strlen(follow_up));
            if (frc != KP_OK || strcmp(h.out.data ? h.out.data : "", follow_up_out) != 0) {
                char what[600];
                snprintf(what, sizeof what, "the follow-up script failed (rc %d, \"%.200s\")", frc, kp_vm_last_error(vm));
                report(s, n, once, what, &h, &r, &shown);
            }
            kp_vm_free(vm);
            if (h.mem.blocks || h.mem.bytes) {
                char what[128];
                snprintf(what, sizeof what, "%ld blocks (%ld bytes) not returned after kp_vm_free", h.mem.blocks, h.mem.bytes);
                report(s, n, once, what, &h, &r, &shown);
            }
        }
    }
    points += total;
    if (shown > 3) fprintf(stderr, "      (%s: %d failures in all)\n", s->path, shown);
    if (verbose) printf("%-50s %6ld allocations, %6ld runs%s\n", s->path, total, script_runs, shown ? "  FAILED" : "");
    free(want.data);
    free(h.out.data);
    free(h.err.data);
}

/* kp_vm_new refused at each of its requests: NULL and nothing kept, or a
 * VM that works. */
static void check_vm_new(void) {
    Script s = {"new.kp", (char *)"", 0, {0}, false, false, false};
    Host h = {0};
    KpVM *vm = new_vm(&h, &s);
    long needed = h.mem.requests;
    kp_vm_free(vm);
    crash_script = "kp_vm_new";
    for (long n = 0; n < needed; n++) {
        crash_n = n;
        for (int mode = 0; mode < 2; mode++) {
            host_reset(&h);
            h.mem.fail = true;
            h.mem.fail_at = n;
            h.mem.once = mode == 0;
            KpConfig cfg = {0};
            cfg.alloc = counting_alloc;
            cfg.alloc_ud = &h.mem;
            cfg.write_out = host_out;
            cfg.write_err = host_err;
            cfg.ud = &h;
            cfg.stack_values = 80000;
            vm = kp_vm_new(&cfg);
            runs++;
            h.mem.fail = false;
            if (vm) {
                out_clear(&h.out);
                if (kp_vm_run_string(vm, "follow-up.kp", follow_up, strlen(follow_up)) != KP_OK ||
                    strcmp(h.out.data ? h.out.data : "", follow_up_out) != 0) {
                    fprintf(stderr, "FAIL: kp_vm_new at N=%ld (%s): it returned a VM that does not work\n", n,
                            mode ? "from N on" : "only N");
                    failures++;
                }
                kp_vm_free(vm);
            }
            if (h.mem.blocks || h.mem.bytes) {
                fprintf(stderr, "FAIL: kp_vm_new at N=%ld: %ld blocks left\n", n, h.mem.blocks);
                failures++;
            }
        }
    }
    free(h.out.data);
    free(h.err.data);
    points += needed;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    catch_crashes();
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "-v")) verbose = 1;
        else if (!strcmp(argv[first], "-skip-big")) skip_big = 1;
        else if (!strcmp(argv[first], "-max") && first + 1 < argc) max_requests = atol(argv[++first]);
        else { fprintf(stderr, "usage: oom [-v] [-max N] [-skip-big] SCRIPT.kp ...\n"); return 2; }
    }
    int nscripts = 0;
    const char *show = getenv("OOM_SHOW");
    if (show) sscanf(show, "%ld:%d", &show_n, &show_mode);
    check_vm_new();
    for (int i = first; i < argc; i++) {
        Script s = {argv[i], NULL, 0, {0}, false, false, false};
        s.text = read_file(argv[i], &s.len);
        if (!s.text) { fprintf(stderr, "FAIL: cannot read %s\n", argv[i]); failures++; continue; }
        if (!parse_flags(&s)) { fprintf(stderr, "FAIL: %s: flags the driver cannot give\n", argv[i]); failures++; free(s.text); continue; }
        if (s.repl) {
            printf("%-50s REPL script (-i), skipped\n", argv[i]);
            free(s.text);
            continue;
        }
        s.catches = strstr(s.text, "catch") != NULL;
        check_script(&s);
        nscripts++;
        free(s.text);
    }
    printf("test-oom: %d scripts, %ld runs (%ld allocation points, each failed once and from there on), %ld failures\n",
           nscripts, runs, points, failures);
    return failures ? 1 : 0;
}
