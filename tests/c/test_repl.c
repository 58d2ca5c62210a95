/*
 * test_repl.c — drives the `keep` REPL the way a user does: through a
 * pseudo-terminal (posix_openpt, no extra library), checking what appears
 * on the screen; then through pipes (`keep -i` runs the REPL on piped
 * input too, which makes it scriptable; plain `keep` runs piped input as one
 * program, tested in test_cli.c).
 *
 * The keep binary is $KEEP_BIN, or ../keep next to this test binary
 * (build/tests/test_repl -> build/keep; build/asan/tests -> build/asan/keep).
 * Every read has a timeout, and children are killed at the end: the test
 * never hangs.  Prints "N passed, M failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;
static char keep_bin[4096];
static char tmpdir[256];

#define TIMEOUT_MS 10000

static void check(bool ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL: %s\n", what);
    }
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ------------------------------------------------------------ pty session */

typedef struct Session {
    pid_t pid;
    int fd;        /* the master side                                  */
    char *out;     /* everything the child printed, without '\r'       */
    size_t len, cap;
    size_t pos;    /* expect() searches from here                      */
    int status;    /* exit status once reaped, -1 before               */
} Session;

static void append(Session *s, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\r') continue;
        if (s->len + 1 >= s->cap) {
            s->cap = s->cap ? s->cap * 2 : 4096;
            s->out = realloc(s->out, s->cap);
            if (!s->out) abort();
        }
        s->out[s->len++] = b[i];
        s->out[s->len] = 0;
    }
}

/* Reads what is available within `ms` milliseconds; false at EOF. */
static bool pump(Session *s, int ms) {
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    int r = poll(&p, 1, ms);
    if (r <= 0) return true;
    char buf[4096];
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n <= 0) return false; /* EIO: the child closed the terminal */
    append(s, buf, (size_t)n);
    return true;
}

static void show_tail(Session *s) {
    size_t from = s->pos > 400 ? s->pos - 400 : 0;
    if (s->len - from > 1200) from = s->len - 1200;
    printf("    --- screen (from offset %zu, searching from %zu) ---\n%s\n    ---\n", from, s->pos,
           s->out ? s->out + from : "");
}

/* Waits until `text` appears after the current position; moves past it. */
static bool expect(Session *s, const char *text, const char *what) {
    long end = now_ms() + TIMEOUT_MS;
    for (;;) {
        if (s->out) {
            char *hit = strstr(s->out + s->pos, text);
            if (hit) {
                s->pos = (size_t)(hit - s->out) + strlen(text);
                check(true, what);
                return true;
            }
        }
        long left = end - now_ms();
        if (left <= 0 || !pump(s, (int)(left < 100 ? left : 100))) {
            /* one last look after EOF */
            if (s->out && strstr(s->out + s->pos, text)) continue;
            check(false, what);
            printf("    expected: \"%s\"\n", text);
            show_tail(s);
            return false;
        }
    }
}

/* Reads for `ms` milliseconds and checks that `text` did not appear. */
static void expect_not(Session *s, const char *text, int ms, const char *what) {
    long end = now_ms() + ms;
    while (now_ms() < end && pump(s, 50)) {}
    bool ok = !s->out || !strstr(s->out + s->pos, text);
    check(ok, what);
    if (!ok) show_tail(s);
}

static void send(Session *s, const char *text) {
    size_t n = strlen(text);
    while (n > 0) {
        ssize_t w = write(s->fd, text, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        text += w;
        n -= (size_t)w;
    }
}

/* Sends one line and waits for the echo of it (so that what follows is the
 * line's output). */
static void line(Session *s, const char *text) {
    send(s, text);
    send(s, "\r");
    char what[300];
    snprintf(what, sizeof what, "echo of: %s", text);
    expect(s, text, what);
    expect(s, "\n", what);
}

/* Starts keep with `args` (NULL-terminated, without argv[0]) on a new
 * pseudo-terminal, with HOME and XDG_STATE_HOME as given (NULL: unset). */
static bool start(Session *s, const char *home, const char *state, const char *const *args) {
    memset(s, 0, sizeof *s);
    s->status = -1;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
        perror("posix_openpt");
        return false;
    }
    const char *slave = ptsname(m);
    if (!slave) return false;
    char sname[256];
    snprintf(sname, sizeof sname, "%s", slave);
    struct winsize ws = {.ws_row = 40, .ws_col = 200};
    ioctl(m, TIOCSWINSZ, &ws);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        setsid();
        int sl = open(sname, O_RDWR); /* becomes the controlling terminal */
        if (sl < 0) _exit(126);
        ioctl(sl, TIOCSCTTY, 0);
        ioctl(sl, TIOCSWINSZ, &ws);
        dup2(sl, 0);
        dup2(sl, 1);
        dup2(sl, 2);
        if (sl > 2) close(sl);
        close(m);
        if (home) setenv("HOME", home, 1); else unsetenv("HOME");
        if (state) setenv("XDG_STATE_HOME", state, 1); else unsetenv("XDG_STATE_HOME");
        setenv("TERM", "dumb", 1);
        signal(SIGINT, SIG_DFL);
        const char *argv[16];
        int n = 0;
        argv[n++] = keep_bin;
        for (int i = 0; args && args[i] && n < 15; i++) argv[n++] = args[i];
        argv[n] = NULL;
        execv(keep_bin, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    s->fd = m;
    return true;
}

/* Waits (reading the screen meanwhile) up to the timeout for the child to
 * exit; returns its exit code, or -1 (and kills it) if it did not. */
static int finish(Session *s) {
    long end = now_ms() + TIMEOUT_MS;
    int st;
    while (now_ms() < end) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            while (pump(s, 50) && s->fd >= 0) {
                struct pollfd p = {.fd = s->fd, .events = POLLIN};
                if (poll(&p, 1, 0) <= 0) break;
            }
            s->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return s->status;
        }
        pump(s, 50);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    return -1;
}

static void end(Session *s) {
    if (s->status < 0 && s->pid > 0) {
        kill(s->pid, SIGKILL);
        int st;
        waitpid(s->pid, &st, 0);
    }
    if (s->fd >= 0) close(s->fd);
    free(s->out);
    memset(s, 0, sizeof *s);
}

static bool file_contains(const char *path, const char *text) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return; }
    fputs(text, f);
    fclose(f);
}

/* ------------------------------------------------------------ sessions */

static void session_main(void) {
    char home[512], state[512], hist[600];
    snprintf(home, sizeof home, "%s/home1", tmpdir);
    snprintf(state, sizeof state, "%s/state1", tmpdir); /* does not exist yet */
    snprintf(hist, sizeof hist, "%s/keep/history", state);
    mkdir(home, 0700);
    Session s;
    if (!start(&s, home, state, NULL)) { check(false, "start keep on a pty"); return; }

    expect(&s, "keep> ", "first prompt");

    line(&s, "x := 2");
    expect(&s, "keep> ", "prompt after a declaration");
    line(&s, "x * 21");
    expect(&s, "42\nkeep> ", "a top-level variable persists; the value is printed");

    line(&s, "f (x: Int) -> Int := {");
    expect(&s, "....> ", "continuation prompt inside a block");
    line(&s, "    return x * 2");
    expect(&s, "....> ", "continuation prompt again");
    line(&s, "}");
    expect(&s, "keep> ", "back to the prompt after the block closes");
    line(&s, "f(21)");
    expect(&s, "42\nkeep> ", "a function defined over three lines persists");

    line(&s, "ys := [1,");
    expect(&s, "....> ", "continuation prompt inside a list");
    line(&s, "2, 3]");
    expect(&s, "keep> ", "the list completes");
    line(&s, "len(ys)");
    expect(&s, "3\nkeep> ", "the multi-line list persists");

    line(&s, "1 / 0");
    expect(&s, "division by zero", "an error is reported");
    expect(&s, "keep> ", "prompt after an error");
    line(&s, "print(\"after\", 1 + 1)");
    expect(&s, "after 2\nkeep> ", "the next line works after an error");

    line(&s, "P : Type = ( .x : Int )");
    expect(&s, "keep> ", "type declared");
    line(&s, "deinit (.p: $&P) -> () := { print(\"bye\", p.x) }");
    expect(&s, "keep> ", "deinit declared");
    line(&s, "P(.x = 1)");
    expect(&s, "P(.x = 1)\nbye 1\nkeep> ", "a line's temporary is shown, then deinitialized at the end of the line");
    line(&s, "q := P(.x = 7)");
    expect_not(&s, "bye 7", 300, "a top-level variable is not deinitialized at the end of its line");
    expect(&s, "keep> ", "prompt after q");

    line(&s, "x := \"redefined\"");
    expect(&s, "keep> ", "redefinition accepted");
    line(&s, "x");
    expect(&s, "\"redefined\"\nkeep> ", "the redefinition is in effect");

    line(&s, ":help");
    expect(&s, ":quit", ":help lists the commands");
    expect(&s, "keep> ", "prompt after :help");
    line(&s, ":stats");
    expect(&s, "stats: root", ":stats reports the allocators");
    expect(&s, "keep> ", "prompt after :stats");
    line(&s, "print(40 + 2)");
    expect(&s, "42\nkeep> ", "print before :ownership");
    line(&s, ":ownership");
    expect(&s, "print(40 + 2)", ":ownership shows the last input");
    expect(&s, "keep> ", "prompt after :ownership");
    line(&s, "xs := [1, 2]");
    expect(&s, "keep> ", "xs declared");
    line(&s, ":ownership ys := xs");
    expect(&s, "1:7 move xs: List", ":ownership shows the move (the compiler's record)");
    expect(&s, "keep> ", "prompt after :ownership CODE");
    line(&s, "xs");
    expect(&s, "[1, 2]\nkeep> ", ":ownership ran nothing: xs was not moved");
    line(&s, ":nonsense");
    expect(&s, "unknown command", "an unknown command is reported");
    expect(&s, "keep> ", "prompt after an unknown command");

    /* Ctrl-C interrupts a running line, not the REPL */
    line(&s, "while true { }");
    expect_not(&s, "keep> ", 300, "the endless loop runs");
    send(&s, "\x03");
    expect(&s, "interrupted", "Ctrl-C interrupts the running line");
    expect(&s, "keep> ", "prompt after the interrupt");
    line(&s, "print(\"alive\")");
    expect(&s, "alive\nkeep> ", "the REPL goes on after Ctrl-C");

    /* Ctrl-C at the prompt discards the input */
    send(&s, "garbage here");
    expect(&s, "garbage here", "typed text is echoed");
    send(&s, "\x03");
    expect(&s, "keep> ", "Ctrl-C at the prompt gives a fresh prompt");
    line(&s, "1 + 2");
    expect(&s, "3\nkeep> ", "the discarded text is not evaluated");

    /* ... and an unfinished multi-line input */
    line(&s, "zs := (1 +");
    expect(&s, "....> ", "continuation prompt in parentheses");
    send(&s, "\x03");
    expect(&s, "keep> ", "Ctrl-C on a continuation line gives a fresh prompt");
    line(&s, "5 * 5");
    expect(&s, "25\nkeep> ", "the unfinished input was discarded");

    line(&s, ":quit");
    expect(&s, "bye 7", "top-level variables are deinitialized at :quit");
    check(finish(&s) == 0, ":quit exits with status 0");

    check(file_contains(hist, "f(21)"), "history written to $XDG_STATE_HOME/keep/history");
    check(file_contains(hist, "print(\\\"alive\\\")") || file_contains(hist, "print(\"alive\")"),
          "history holds later lines too");
    end(&s);
}

static void session_home_and_eof(void) {
    char home[512], hist[600], script[600];
    snprintf(home, sizeof home, "%s/home2", tmpdir);
    snprintf(hist, sizeof hist, "%s/.keep_history", home);
    snprintf(script, sizeof script, "%s/defs.kp", tmpdir);
    mkdir(home, 0700);
    write_file(script,
               "Box : Type = ( .v : Int )\n"
               "deinit (.b: $&Box) -> () := { print(\"freed\", b.v) }\n"
               "twice (n: Int) -> Int := { return 2 * n }\n"
               "kept := Box(.v = 3)\n"
               "print(\"loaded\")\n");
    const char *args[] = {"-i", script, NULL};
    Session s;
    if (!start(&s, home, NULL, args)) { check(false, "start keep -i on a pty"); return; }
    expect(&s, "loaded", "keep -i runs the file first");
    expect(&s, "keep> ", "then shows the prompt");
    line(&s, "twice(21)");
    expect(&s, "42\nkeep> ", "the file's functions are defined in the REPL");
    line(&s, "kept.v + 1");
    expect(&s, "4\nkeep> ", "the file's variables are defined in the REPL");
    line(&s, "b := Box(.v = 9)");
    expect(&s, "keep> ", "declared b");
    /* Ctrl-D typed while the terminal is still in cooked mode (between the
     * prompt and libedit's switch to raw mode) would reach libedit as a NUL
     * byte: wait as a typing user would. */
    expect_not(&s, "freed", 300, "nothing is deinitialized before Ctrl-D");
    send(&s, "\x04"); /* Ctrl-D */
    expect(&s, "freed 9", "Ctrl-D deinitializes the REPL's variables");
    expect(&s, "freed 3", "... then the file's (reverse declaration order)");
    check(finish(&s) == 0, "Ctrl-D exits with status 0");
    check(file_contains(hist, "twice(21)"), "history written to ~/.keep_history without XDG_STATE_HOME");
    end(&s);
}

static void session_unwritable_history(void) {
    char home[512], state[600];
    snprintf(home, sizeof home, "%s/plainfile", tmpdir);
    write_file(home, "not a directory\n");
    snprintf(state, sizeof state, "%s/sub", home); /* cannot be created */
    Session s;
    if (!start(&s, home, state, NULL)) { check(false, "start keep on a pty"); return; }
    expect(&s, "keep> ", "prompt with an unwritable history location");
    line(&s, "6 * 7");
    expect(&s, "42\nkeep> ", "the REPL works when the history cannot be written");
    line(&s, ":quit");
    check(finish(&s) == 0, "exit 0 with an unwritable history location");
    end(&s);
}

/* Tab completion, multi-line history entries, stray closers, :type. */
static void session_editing(void) {
    char home[512], state[512];
    snprintf(home, sizeof home, "%s/home3", tmpdir);
    snprintf(state, sizeof state, "%s/state3", tmpdir);
    mkdir(home, 0700);
    Session s;
    if (!start(&s, home, state, NULL)) { check(false, "start keep on a pty"); return; }
    expect(&s, "keep> ", "first prompt (editing session)");

    line(&s, "Vec : Type = ( .xpos : Int, .ypos : Int = 0, .label : String = \"v\" )");
    expect(&s, "keep> ", "a record type declared");
    line(&s, "velocity := Vec(.xpos = 3)");
    expect(&s, "keep> ", "a variable of it declared");

    /* a unique global: completed in place */
    send(&s, "veloc\t");
    expect(&s, "velocity", "Tab completes a top-level variable");
    send(&s, ".xp\t");
    expect(&s, "velocity.xpos", "Tab after `.` completes a field of the variable's record type");
    send(&s, "\r");
    expect(&s, "3\nkeep> ", "the completed line runs");

    /* a function and a type */
    line(&s, "scale_by (v: &Vec, k: Int) -> Int := { return v.xpos * k }");
    expect(&s, "keep> ", "a function declared");
    send(&s, "scale_\t");
    expect(&s, "scale_by", "Tab completes a function name");
    send(&s, "(&velocity, 7)\r");
    expect(&s, "21\nkeep> ", "the completed call runs");
    send(&s, "w := Ve\t");
    expect(&s, "w := Vec", "Tab completes a type name");
    send(&s, "(.xpos = 1)\r");
    expect(&s, "keep> ", "the completed constructor runs");
    /* several candidates: a second Tab lists them */
    send(&s, "velocity.\t\t");
    expect(&s, "label", "Tab Tab lists the fields");
    expect(&s, "ypos", "... all of them");
    send(&s, "\x15"); /* Ctrl-U: clear the line */
    send(&s, "\r");
    expect(&s, "keep> ", "prompt after clearing the line");
    send(&s, "prin\t");
    expect(&s, "print", "Tab completes a built-in function");
    send(&s, "(\"built-in\")\r");
    expect(&s, "built-in\nkeep> ", "the completed built-in runs");

    /* a multi-line entry is one history entry */
    line(&s, "triple (n: Int) -> Int := {");
    expect(&s, "....> ", "continuation prompt");
    line(&s, "    return n * 3");
    expect(&s, "....> ", "continuation prompt again");
    line(&s, "}");
    expect(&s, "keep> ", "the function is complete");
    send(&s, "\x10"); /* Ctrl-P: the previous history entry */
    expect(&s, "return n * 3", "the previous history entry is the whole definition");
    send(&s, "\r");
    expect(&s, "keep> ", "the recalled definition is evaluated whole");
    expect_not(&s, "error", 300, "... without an error (not just its `}`)");
    line(&s, "triple(14)");
    expect(&s, "42\nkeep> ", "the recalled definition is in effect");

    /* a stray closer inside an open block is reported at once */
    line(&s, "flag := true");
    expect(&s, "keep> ", "flag declared");
    line(&s, "if flag {");
    expect(&s, "....> ", "continuation prompt inside if");
    line(&s, ")");
    expect(&s, "unexpected ')'", "a stray ) is reported at once");
    expect(&s, "keep> ", "and the input starts afresh (not ....>)");
    line(&s, "print(\"fresh\")");
    expect(&s, "fresh\nkeep> ", "the next line is a fresh input");

    /* :type prints the compiler's static type */
    line(&s, ":type velocity");
    expect(&s, "Vec\nkeep> ", ":type of a variable");
    line(&s, ":type 1 + 2");
    expect(&s, "Int\nkeep> ", ":type of an arithmetic expression");
    line(&s, ":type [1, 2, 3]");
    expect(&s, "List#(Int)\nkeep> ", ":type of a list literal: its element type too");
    line(&s, ":type \"a\" + \"b\"");
    expect(&s, "String\nkeep> ", ":type of a string concatenation");
    line(&s, ":type triple(2)");
    expect(&s, "Int\nkeep> ", ":type of a call (the declared output type)");
    line(&s, ":type velocity.label");
    expect(&s, "String\nkeep> ", ":type of a field");
    line(&s, ":type nosuch + 1");
    expect(&s, "nosuch", ":type of an unknown name reports the error");
    expect(&s, "keep> ", "prompt after the :type error");
    line(&s, ":type");
    expect(&s, "usage: :type EXPR", ":type without an expression");

    line(&s, ":quit");
    check(finish(&s) == 0, "the editing session exits 0");
    end(&s);
}

/* ------------------------------------------------------------ piped */

/* Runs keep (extra `args`) with `input` on stdin; stdout (and stderr when
 * `with_err`) into `out`.  Returns the exit status. */
static int piped(const char *args, const char *input, bool with_err, char *out, size_t cap) {
    char in[600], cmd[8192];
    snprintf(in, sizeof in, "%s/input.txt", tmpdir);
    write_file(in, input);
    snprintf(cmd, sizeof cmd, "timeout 30 '%s' %s < '%s' %s", keep_bin, args, in,
             with_err ? "2>&1" : "2>/dev/null");
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) { out[0] = 0; return -1; }
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_piped(const char *input, const char *want, const char *what) {
    char out[8192];
    int rc = piped("-i", input, false, out, sizeof out);
    bool ok = rc == 0 && !strcmp(out, want);
    check(ok, what);
    if (!ok) printf("    exit %d, stdout:\n%s\n    wanted:\n%s\n", rc, out, want);
}

static void piped_tests(void) {
    check_piped("print(1+2)\n", "3\n", "piped: print(1+2)");
    check_piped("x := 2\nx * 21\n", "42\n", "piped: definitions persist, the value is printed");
    check_piped("1 + 1", "2\n", "piped: a last line without a newline");
    check_piped("f (n: Int) -> Int := {\n  return n + 1\n}\nf(41)\n", "42\n",
                "piped: a multi-line function");
    check_piped("print(1)\n1 / 0\nprint(2)\n", "1\n2\n", "piped: an error does not stop the session");
    check_piped("print(1)\n:quit\nprint(2)\n", "1\n", "piped: :quit ends the session");
    check_piped("P : Type = ( .x : Int )\n"
                "deinit (.p: $&P) -> () := { print(\"bye\", p.x) }\n"
                "a := P(.x = 1)\n"
                "P(.x = 2)\n"
                "print(\"end\")\n",
                "P(.x = 2)\nbye 2\nend\nbye 1\n",
                "piped: temporaries die at the end of their line, variables at the end of input");
    check_piped("print(\"no prompt\")\n", "no prompt\n", "piped: no prompt is printed");

    /* a line that fails to compile changes nothing */
    check_piped("f (x: Int) -> Int := { return x + 1 }\n"
                "f (x: Int) -> Int := { return nosuch(x) }\n"
                "print(f(1))\n",
                "2\n", "piped: a redefinition that fails to compile leaves the old body");
    check_piped("P : Type = ( .x : Int )\n"
                "deinit (.p: $&P) -> () := { print(\"bye\") }\n"
                "deinit (.p: $&P) -> () := { nosuch() }\n"
                "a := P(.x = 1)\n",
                "bye\n", "piped: a user deinit that fails to compile leaves the old one");
    check_piped("g () -> Int := { return nosuch() }\n"
                "g () -> Int := { return 5 }\n"
                "print(g())\n",
                "5\n", "piped: a function whose chunk failed is not defined (defining it again is no redefinition)");
    {
        char o2[8192];
        int r2 = piped("-i", "g () -> Int := { return nosuch() }\nprint(g())\n", true, o2, sizeof o2);
        const char *u = strstr(o2, "unknown function 'g'");
        check(r2 == 0 && u && !strstr(o2, "runtime error"),
              "piped: a function declared by a chunk that failed is unknown to later lines");
        if (!(r2 == 0 && u)) printf("    exit %d, output:\n%s\n", r2, o2);
    }
    /* static binding in the REPL */
    check_piped("f (x: Int) -> Int := { return x + 1 }\n"
                "g () -> Int := { return f(2) }\n"
                "print(g())\n"
                "f (x: Int) -> Int := { return x + 100 }\n"
                "print(g())\n",
                "3\n102\n", "piped: a call bound in an earlier line runs the redefined body");
    check_piped("f (x) -> Int := { return 1 }\n"
                "g () -> Int := { return f(2) }\n"
                "print(g())\n"
                "f (x: Int) -> Int := { return 2 }\n"
                "print(g())\n",
                "1\n2\n", "piped: a call not exactly typed is selected at run time: it sees a later, better overload");
    {
        char o2[8192];
        int r2 = piped("-i", "f (x: Int) -> Int := { return x }\n"
                             "h () -> Int := { if false { return f(\"s\") }\n return 0 }\n"
                             "print(h())\n",
                       true, o2, sizeof o2);
        const char *e = strstr(o2, "argument 1 of 'f' (x) must be Int, but it is String");
        check(r2 == 0 && e && strstr(o2, "unknown function 'h'"),
              "piped: a call no overload accepts is a compile error in the REPL too, in code that never runs");
        if (!(r2 == 0 && e)) printf("    exit %d, output:\n%s\n", r2, o2);
        r2 = piped("--dump-bytecode -i", "f (x: Int) -> Int := { return x + 1 }\nprint(f(41))\n", true, o2, sizeof o2);
        check(r2 == 0 && strstr(o2, "CALLS") && strstr(o2, "42"),
              "piped: an exactly typed call in the REPL is bound at compile time (CALLS)");
        if (!(r2 == 0 && strstr(o2, "CALLS"))) printf("    exit %d, output:\n%s\n", r2, o2);
    }

    char out[8192];
    int rc = piped("-i", "print(1)\n1 / 0\nprint(2)\n", true, out, sizeof out);
    const char *e = strstr(out, "division by zero");
    const char *two = strstr(out, "\n2\n");
    check(rc == 0 && e && two && e < two, "piped: the error is reported, in order with the output, exit 0");
    if (!(rc == 0 && e && two && e < two)) printf("    exit %d, output:\n%s\n", rc, out);

    rc = piped("-i", "print(1)\nys := [1,\n", true, out, sizeof out);
    check(rc == 0 && !strncmp(out, "1\n", 2) && strstr(out, "error"),
          "piped: input ending inside a bracket is reported, exit 0");
    if (!(rc == 0 && strstr(out, "error"))) printf("    exit %d, output:\n%s\n", rc, out);

    char script[600], args[700];
    snprintf(script, sizeof script, "%s/lib.kp", tmpdir);
    write_file(script, "sq (n: Int) -> Int := { return n * n }\nbase := 2\n");
    snprintf(args, sizeof args, "-i '%s'", script);
    rc = piped(args, "sq(base + 4)\n", false, out, sizeof out);
    check(rc == 0 && !strcmp(out, "36\n"), "piped: keep -i file then input");
    if (!(rc == 0 && !strcmp(out, "36\n"))) printf("    exit %d, output:\n%s\n", rc, out);

    rc = piped("-i", "", true, out, sizeof out);
    check(rc == 0 && !out[0], "keep -i without a file is the REPL, even on piped input (Lua's -i)");
}

int main(int argc, char **argv) {
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    const char *env = getenv("KEEP_BIN");
    if (env && *env) {
        snprintf(keep_bin, sizeof keep_bin, "%s", env);
    } else {
        const char *slash = strrchr(argv[0], '/');
        if (slash)
            snprintf(keep_bin, sizeof keep_bin, "%.*s/../keep", (int)(slash - argv[0]), argv[0]);
        else
            snprintf(keep_bin, sizeof keep_bin, "build/keep");
    }
    if (access(keep_bin, X_OK) != 0) {
        printf("FAIL: no keep binary at %s (set KEEP_BIN)\n0 passed, 1 failed\n", keep_bin);
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/keep_test_repl_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }

    session_main();
    session_home_and_eof();
    session_unwritable_history();
    session_editing();
    piped_tests();

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
