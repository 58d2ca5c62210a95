/*
 * io.c — input and files through the file system capability: read_file
 * write_file append_file exists list_dir remove_file read_line.
 *
 * Design.  The file system is a capability (docs/language.md §9): every
 * file function takes `&system.fs` first, which exists only when the host
 * granted it (the `keep` command does; KpConfig.allow_fs for hosts).
 * read_line() reads the process's standard input and is allowed under the
 * same grant.  Errors name the function, the path and the operating
 * system's reason (strerror): `read_file: cannot open 'x.txt': No such
 * file or directory`.  Paths are strings passed to the OS as they are.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib.h"

static bool fs_arg(KpVM *vm, KpValue v, const char *fn) {
    v = kp_deref(v);
    if (v.tag == KP_T_SYSTEM && v.aux == 2) return true;
    return kp_vm_error(vm, "%s needs the file system capability: %s(&system.fs, ...)", fn, fn);
}

static KpString *path_arg(KpVM *vm, const char *fn, KpValue *a) {
    if (!fs_arg(vm, a[0], fn)) return NULL;
    KpString *p = kp_lib_str(vm, fn, a, 1);
    if (p && memchr(p->data, 0, p->len)) {
        kp_vm_error(vm, "%s: the path contains a NUL byte", fn);
        return NULL;
    }
    return p;
}

/* read_file(&system.fs, path) -> String */
static bool b_read_file(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *p = path_arg(vm, "read_file", a);
    if (!p) return false;
    FILE *f = fopen(p->data, "rb");
    if (!f) return kp_vm_error(vm, "read_file: cannot open '%s': %s", p->data, strerror(errno));
    KpBuf b = {0};
    char chunk[16384];
    size_t got;
    bool ok = true;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!kp_buf_add(vm, &b, chunk, got)) { ok = false; break; }
    if (ok && ferror(f)) ok = kp_vm_error(vm, "read_file: cannot read '%s': %s", p->data, strerror(errno));
    fclose(f);
    ok = ok && kp_lib_ret_str(vm, b.data, b.len, out);
    kp_buf_free(vm, &b);
    return ok;
}

static bool write_mode(KpVM *vm, KpValue *a, KpValue *out, const char *fn, const char *mode) {
    KpString *p = path_arg(vm, fn, a);
    KpString *s = p ? kp_lib_str(vm, fn, a, 2) : NULL;
    if (!s) return false;
    FILE *f = fopen(p->data, mode);
    if (!f) return kp_vm_error(vm, "%s: cannot open '%s': %s", fn, p->data, strerror(errno));
    bool ok = fwrite(s->data, 1, s->len, f) == s->len;
    int err = errno;
    if (fclose(f) != 0 && ok) { ok = false; err = errno; }
    *out = kp_unit();
    return ok ? true : kp_vm_error(vm, "%s: cannot write '%s': %s", fn, p->data, strerror(err));
}
static bool b_write_file(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return write_mode(vm, a, out, "write_file", "wb"); }
static bool b_append_file(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return write_mode(vm, a, out, "append_file", "ab"); }

/* exists(&system.fs, path) -> Bool: a file or directory is there. */
static bool b_exists(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *p = path_arg(vm, "exists", a);
    if (!p) return false;
    struct stat st;
    *out = kp_bool(stat(p->data, &st) == 0);
    return true;
}

static int cmp_names(const void *x, const void *y) {
    const KpString *a = ((const KpValue *)x)->p, *b = ((const KpValue *)y)->p;
    return strcmp(a->data, b->data);
}

/* list_dir(&system.fs, path) -> List#(String): the entry names, sorted
 * by bytes, without "." and "..". */
static bool b_list_dir(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *p = path_arg(vm, "list_dir", a);
    if (!p) return false;
    DIR *d = opendir(p->data);
    if (!d) return kp_vm_error(vm, "list_dir: cannot open '%s': %s", p->data, strerror(errno));
    KpValue lv;
    KpList *l = kp_lib_new_list(vm, 0, &lv);
    if (!l) { closedir(d); return false; }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        KpValue s;
        if (!kp_lib_ret_str(vm, e->d_name, strlen(e->d_name), &s) || !kp_list_push(vm, l, s)) {
            closedir(d);
            kp_drop(vm, lv);
            return false;
        }
    }
    closedir(d);
    if (l->len > 1) qsort(l->items, l->len, sizeof(KpValue), cmp_names);
    *out = lv;
    return true;
}

/* remove_file(&system.fs, path) */
static bool b_remove_file(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *p = path_arg(vm, "remove_file", a);
    if (!p) return false;
    if (unlink(p->data) != 0) return kp_vm_error(vm, "remove_file: cannot remove '%s': %s", p->data, strerror(errno));
    *out = kp_unit();
    return true;
}

/* read_line() -> String or (): the next line of standard input without
 * its line ending; () at the end of input. */
static bool b_read_line(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)a; (void)n;
    if (!vm->allow_fs) return kp_vm_error(vm, "read_line: this program was not granted input (the host withholds system.fs)");
    KpBuf b = {0};
    int c;
    bool any = false, ok = true;
    while ((c = getchar()) != EOF) {
        any = true;
        if (c == '\n') break;
        char ch = (char)c;
        if (!kp_buf_add(vm, &b, &ch, 1)) { ok = false; break; }
    }
    if (ok && !any) {
        *out = kp_unit();
    } else if (ok) {
        size_t len = b.len;
        if (len && b.data[len - 1] == '\r') len--;
        ok = kp_lib_ret_str(vm, b.data, len, out);
    }
    kp_buf_free(vm, &b);
    return ok;
}

const KpBuiltin kp_builtins_io[] = {
    {"read_file", b_read_file, "fs: &System.Fs, path: &String", "String", KP_BF_CTX},
    {"write_file", b_write_file, "fs: &System.Fs, path: &String, text: &String", "()", 0},
    {"append_file", b_append_file, "fs: &System.Fs, path: &String, text: &String", "()", 0},
    {"exists", b_exists, "fs: &System.Fs, path: &String", "Bool", 0},
    {"list_dir", b_list_dir, "fs: &System.Fs, path: &String", "List#(String)", KP_BF_CTX},
    {"remove_file", b_remove_file, "fs: &System.Fs, path: &String", "()", 0},
    {"read_line", b_read_line, "", "String|()", KP_BF_CTX},
    {NULL, NULL, NULL, NULL, 0},
};
