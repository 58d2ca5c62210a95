/*
 * repl.c — the interactive REPL of the `keep` command.
 *
 * Every input is evaluated with kp_vm_eval(..., KP_EVAL_REPL) on one VM, so
 * definitions persist; the VM prints the value of a final expression and
 * deinitializes a line's temporaries when the line ends.  When the parser
 * reports KP_ERR_INCOMPLETE (an open bracket, string or block) the lines are
 * accumulated under the continuation prompt and the whole text is evaluated
 * once it is complete.
 *
 * On a terminal, lines are read with libedit's readline (history in
 * $XDG_STATE_HOME/keep/history or ~/.keep_history).  An entry that spans
 * several lines is stored as one history entry (Up brings back the whole
 * definition, not its last `}`).  Tab completes the name before the
 * cursor from what the VM knows (kp_vm_complete: top-level variables,
 * functions, types, keywords; after `a.` the fields of a's record type).
 * Otherwise (keep -i with piped input) lines are read silently from stdin,
 * which makes the REPL scriptable.
 *
 * An entry is complete when the parser says so: KP_ERR_INCOMPLETE (an open
 * bracket, string or block with every token so far accepted) continues it;
 * any error before the end — a stray `)` inside `if x {` — is reported at
 * once.
 *
 * Ctrl-C.  A SIGINT handler sets a flag and, while a line runs, calls
 * kp_vm_interrupt (an atomic store, safe in a signal handler): the line
 * stops with "interrupted" and the REPL goes on.  On a terminal SIGINT is
 * blocked except while a line runs and while libedit waits for a key: our
 * rl_getc_function waits with pselect, which unblocks it atomically, so a
 * Ctrl-C typed at any moment outside a running line (even just before the
 * wait starts) ends that wait; readline returns, and the flag tells that
 * apart from end of input: the current input is discarded and a fresh
 * prompt shown.
 */
#include "repl.h"

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#define PROMPT "keep> "
#define PROMPT_MORE "....> "
#define HISTORY_MAX 1000

static volatile sig_atomic_t g_sigint;  /* a SIGINT arrived             */
static volatile sig_atomic_t g_running; /* a line is being evaluated    */
static volatile sig_atomic_t g_newline; /* the terminal echoed ^C       */
static KpVM *volatile g_vm;             /* the VM to interrupt          */
static bool g_tty;                      /* stdin is a terminal          */
static sigset_t g_open_mask;            /* the signal mask without SIGINT */

static void on_sigint(int sig) {
    (void)sig;
    g_sigint = 1;
    if (g_running && g_vm) {
        kp_vm_interrupt(g_vm);
        if (g_tty) g_newline = 1;
    }
}

void keep_repl_write_err(void *ud, const char *bytes, size_t len) {
    (void)ud;
    if (g_newline) { /* end the line the terminal's "^C" is on */
        g_newline = 0;
        fputc('\n', stdout);
    }
    fflush(stdout);
    fwrite(bytes, 1, len, stderr);
    fflush(stderr);
}

static void write_stdout(void *ud, const char *bytes, size_t len) {
    (void)ud;
    fwrite(bytes, 1, len, stdout);
}

/* ------------------------------------------------------------ text buffer */

typedef struct Text {
    char *data;
    size_t len, cap;
} Text;

static int text_add(Text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *p = realloc(t->data, cap);
        if (!p) return -1;
        t->data = p;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
    return 0;
}

static void text_set(Text *t, const char *s, size_t n) {
    t->len = 0;
    if (text_add(t, s, n) != 0) t->len = 0;
}

static void text_sink(void *ud, const char *bytes, size_t len) { text_add(ud, bytes, len); }

/* ------------------------------------------------------------ the session */

typedef struct Repl {
    KpVM *vm;
    Text input; /* the lines of the current (unfinished) input        */
    Text last;  /* the last input evaluated (for :ownership)          */
    Text entry; /* the lines of the current entry, for the history    */
    bool tty;
    bool exited;   /* an input called exit(code): the session ends      */
    char *history; /* history file path, or NULL                      */
} Repl;

static void help(void) {
    printf("Enter Keep statements and expressions; an expression's value is printed.\n"
           "An unfinished input (open bracket, string or block) continues on the next\n"
           "line (" PROMPT_MORE "); Ctrl-C discards it, or interrupts a running line.\n"
           "Definitions persist and may be redefined.  Temporaries are deinitialized\n"
           "at the end of each input, top-level variables when the session ends.\n"
           "Commands:\n"
           "  :help              this text\n"
           "  :quit              end the session (also Ctrl-D)\n"
           "  :stats             allocator statistics\n"
           "  :type EXPR         the static type the compiler infers for EXPR\n"
           "  :ownership [code]  the last input (or code), compiled but not run, with the\n"
           "                     moves, drops and keeps the compiler inserts under each line\n");
}

static const char *skip_space(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return s;
}

/* Runs a `:command`.  Returns false to end the session. */
static bool command(Repl *r, const char *line) {
    const char *p = line + 1;
    size_t n = 0;
    while (p[n] && p[n] != ' ' && p[n] != '\t' && p[n] != '\r' && p[n] != '\n') n++;
    const char *arg = skip_space(p + n);
    size_t arglen = strlen(arg);
    while (arglen && (arg[arglen - 1] == ' ' || arg[arglen - 1] == '\t' || arg[arglen - 1] == '\r' ||
                      arg[arglen - 1] == '\n'))
        arglen--;
#define IS(word) (n == strlen(word) && !strncmp(p, word, n))
    if (IS("quit") || IS("q") || IS("exit")) return false;
    if (IS("help") || IS("h") || IS("?")) {
        help();
    } else if (IS("stats")) {
        fflush(stdout);
        kp_vm_report_stats(r->vm);
    } else if (IS("type") || IS("t")) {
        if (!arglen) {
            printf("usage: :type EXPR\n");
        } else {
            Text t = {0};
            int rc = kp_vm_static_type(r->vm, arg, arglen, text_sink, &t);
            if (rc == KP_OK && t.len) printf("%s\n", t.data);
            else if (rc == KP_OK) printf("not known before running (checked when it runs)\n");
            free(t.data);
        }
    } else if (IS("ownership")) {
        /* the compiler's own record, compiled with the REPL's rules in the
         * session's scope (its variables, functions and types) */
        if (arglen) {
            kp_vm_emit_ownership_ex(r->vm, "<repl>", arg, arglen, KP_EVAL_REPL, write_stdout, NULL);
        } else if (r->last.len) {
            kp_vm_emit_ownership_ex(r->vm, "<repl>", r->last.data, r->last.len, KP_EVAL_REPL, write_stdout, NULL);
        } else {
            printf("nothing evaluated yet (or give the code: :ownership CODE)\n");
        }
    } else {
        fflush(stdout);
        fprintf(stderr, "unknown command ':%.*s' (try :help)\n", (int)n, p);
    }
#undef IS
    fflush(stdout);
    return true;
}

static void block_sigint(bool block) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL);
}

static int eval(Repl *r, unsigned flags) {
    g_sigint = 0;
    g_newline = 0;
    g_running = 1;
    if (r->tty) block_sigint(false);
    int rc = kp_vm_eval(r->vm, "<repl>", r->input.data ? r->input.data : "", r->input.len, flags);
    if (r->tty) block_sigint(true);
    g_running = 0;
    g_sigint = 0; /* a Ctrl-C while the line ran was for the line */
    if (g_newline) { /* interrupted without an error report */
        g_newline = 0;
        fputc('\n', stdout);
    }
    fflush(stdout);
    return rc;
}

/* Takes one line (without its newline).  Returns false to end the session. */
static bool take_line(Repl *r, const char *line) {
    if (r->input.len == 0) {
        const char *s = skip_space(line);
        if (!*s) return true;
        if (*s == ':') return command(r, s);
    }
    if (text_add(&r->input, line, strlen(line)) != 0 || text_add(&r->input, "\n", 1) != 0) {
        fflush(stdout);
        fprintf(stderr, "keep: out of memory\n");
        r->input.len = 0;
        return true;
    }
    int rc = eval(r, KP_EVAL_REPL);
    if (rc == KP_ERR_INCOMPLETE) return true;
    text_set(&r->last, r->input.data, r->input.len);
    r->input.len = 0;
    if (rc == KP_EXIT) r->exited = true;
    return rc != KP_EXIT;
}

/* End of input inside an unfinished construct: report it as the compiler
 * would (a plain evaluation of an incomplete text is a compile error). */
static void flush_incomplete(Repl *r) {
    if (r->input.len == 0) return;
    if (eval(r, 0) == KP_OK) text_set(&r->last, r->input.data, r->input.len);
    r->input.len = 0;
}

/* ------------------------------------------------------------ history */

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

/* mkdir -p of the directory part of `path`; errors are ignored (the
 * history is then simply not saved). */
static void make_parent_dirs(const char *path) {
    char *p = join(path, "");
    if (!p) return;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        mkdir(p, 0700);
        *s = '/';
    }
    free(p);
}

static char *history_path(void) {
    const char *state = getenv("XDG_STATE_HOME");
    if (state && state[0] == '/') {
        char *p = join(state, "/keep/history");
        if (p) make_parent_dirs(p);
        return p;
    }
    const char *home = getenv("HOME");
    if (home && *home) return join(home, "/.keep_history");
    return NULL;
}

/* ------------------------------------------------------------ input */

/* One byte from fd, waiting with SIGINT unblocked; -1 at end of input, on
 * an error, or when Ctrl-C was pressed (g_sigint). */
static int read_byte(int fd) {
    for (;;) {
        if (g_sigint) return -1;
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        int n = pselect(fd + 1, &set, NULL, NULL, NULL, &g_open_mask);
        if (n < 0) {
            if (errno == EINTR) continue; /* the loop checks g_sigint */
            return -1;
        }
        unsigned char c;
        ssize_t got = read(fd, &c, 1);
        if (got == 1) return c;
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        return -1;
    }
}

/* libedit's rl_getc_function: a character (a Unicode code point, decoded
 * from UTF-8 here since libedit takes the result as one wide character),
 * or EOF, which makes readline return. */
static int getc_fn(FILE *in) {
    int fd = fileno(in ? in : stdin);
    int c = read_byte(fd);
    if (c < 0x80) return c < 0 ? EOF : c;
    int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    int cp = c & (0x3F >> more);
    if (more == 0 || c >= 0xF8) return 0xFFFD;
    for (int i = 0; i < more; i++) {
        int b = read_byte(fd);
        if (b < 0) return EOF;
        if ((b & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (b & 0x3F);
    }
    return cp;
}

/* ------------------------------------------------------------ completion */

/* The completions of the word before the cursor, collected from
 * kp_vm_complete and handed to libedit one by one. */
static struct {
    char **items;
    int n, cap;
    int next;
} g_cands;

static void cands_clear(void) {
    for (int i = 0; i < g_cands.n; i++) free(g_cands.items[i]);
    g_cands.n = 0;
    g_cands.next = 0;
}

static void cand_add(void *ud, const char *bytes, size_t len) {
    (void)ud;
    if (g_cands.n == g_cands.cap) {
        int cap = g_cands.cap ? g_cands.cap * 2 : 32;
        char **p = realloc(g_cands.items, sizeof *p * (size_t)cap);
        if (!p) return;
        g_cands.items = p;
        g_cands.cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return;
    memcpy(c, bytes, len);
    c[len] = 0;
    g_cands.items[g_cands.n++] = c;
}

static char *complete_next(const char *text, int state) {
    if (state == 0) {
        cands_clear();
        if (g_vm) kp_vm_complete(g_vm, text, strlen(text), cand_add, NULL);
    }
    if (g_cands.next >= g_cands.n) return NULL;
    const char *c = g_cands.items[g_cands.next++];
    size_t n = strlen(c);
    char *copy = malloc(n + 1); /* libedit frees it */
    if (copy) memcpy(copy, c, n + 1);
    return copy;
}

static char **complete(const char *text, int start, int end) {
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* names only, never file names */
    return rl_completion_matches(text, complete_next);
}

/* ------------------------------------------------------------ loops */

static void loop_tty(Repl *r) {
    /* libedit decodes input by the locale's character type: without this,
     * non-ASCII characters (UTF-8) are dropped.  LC_CTYPE only: numbers
     * keep being printed the C way. */
    const char *loc = setlocale(LC_CTYPE, "");
    if (!loc || !strcmp(loc, "C") || !strcmp(loc, "POSIX")) setlocale(LC_CTYPE, "C.UTF-8");
    rl_catch_signals = 0;       /* our SIGINT handler, not libedit's */
    rl_getc_function = getc_fn; /* waits for keys with SIGINT unblocked */
    rl_readline_name = "keep";
    rl_attempted_completion_function = complete;
    /* a word ends at these; not at '.', so `p.x` completes as a field */
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[],+-*/%!~:#";
    rl_completion_append_character = '\0';
    r->history = history_path();
    stifle_history(HISTORY_MAX);
    if (r->history) read_history(r->history);
    for (;;) {
        char *line = readline(r->input.len ? PROMPT_MORE : PROMPT);
        if (g_sigint) { /* Ctrl-C at the prompt: drop the input */
            g_sigint = 0;
            free(line);
            r->input.len = 0;
            r->entry.len = 0;
            fputs("\n", stdout);
            fflush(stdout);
            continue;
        }
        if (!line) { /* Ctrl-D */
            fputs("\n", stdout);
            fflush(stdout);
            flush_incomplete(r);
            break;
        }
        /* the entry's lines are one history entry once it is complete */
        if (r->entry.len) text_add(&r->entry, "\n", 1);
        text_add(&r->entry, line, strlen(line));
        bool go_on = take_line(r, line);
        free(line);
        if (r->input.len == 0) {
            if (r->entry.data && *skip_space(r->entry.data)) {
                add_history(r->entry.data);
                if (r->history) write_history(r->history); /* failure is fine */
            }
            r->entry.len = 0;
        }
        if (!go_on) break;
    }
    free(r->history);
    r->history = NULL;
    free(r->entry.data);
    r->entry = (Text){0};
    cands_clear();
    free(g_cands.items);
    g_cands.items = NULL;
    g_cands.cap = 0;
}

static void loop_pipe(Repl *r) {
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        g_sigint = 0;
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (g_sigint && errno == EINTR) { /* Ctrl-C while reading */
                clearerr(stdin);
                r->input.len = 0;
                continue;
            }
            flush_incomplete(r);
            break;
        }
        if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
        if (n > 0 && line[n - 1] == '\r') line[--n] = 0;
        if (!take_line(r, line)) break;
    }
    free(line);
}

int keep_repl(KpVM *vm) {
    Repl r = {0};
    r.vm = vm;
    r.tty = isatty(STDIN_FILENO) != 0;
    g_tty = r.tty;

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a read of piped input must return */
    g_vm = vm;
    g_sigint = 0;
    sigaction(SIGINT, &sa, &old);

    if (r.tty) {
        sigprocmask(SIG_BLOCK, NULL, &g_open_mask);
        sigdelset(&g_open_mask, SIGINT);
        block_sigint(true);
        printf("Keep %s — :help for help, :quit or Ctrl-D to leave\n", KEEP_VERSION);
        fflush(stdout);
        loop_tty(&r);
    } else {
        loop_pipe(&r);
    }
    fflush(stdout);

    if (r.tty) block_sigint(false); /* a pending Ctrl-C reaches our handler */
    sigaction(SIGINT, &old, NULL);
    g_vm = NULL;
    free(r.input.data);
    free(r.last.data);
    return r.exited ? KP_EXIT : 0;
}
