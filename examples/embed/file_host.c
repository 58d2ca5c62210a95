/*
 * file_host.c — a host that gives scripts real files as a host-defined type.
 *
 * `File` is declared with kp_define_type: its values carry a FILE * that
 * only this host can make (the C function `create`), scripts write to it
 * through its methods (`write_line`, `lines_written`), borrow it (&File,
 * $&File), move it into functions and lists, and overload their own
 * functions on it; none can construct or copy one.  When a File's owner
 * goes (a scope's end, or kp_vm_free for what is left), its deinit closes
 * the file — exactly once.  The host then reads the files back and prints
 * them.
 *
 * Run from anywhere: build/embed/file_host
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <keep.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct File {
    FILE *fp;
    long lines;
    char path[256];
} File;

static KpHostType *file_type;
static char dir[64];
static int closed;

static void file_deinit(void *payload, void *ud) {
    (void)ud;
    File *f = payload;
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    closed++;
}

/* create(name: String) -> File */
static int c_create(KpVM *vm, int nargs, void *ud) {
    (void)ud;
    size_t len = 0;
    const char *name = nargs == 1 ? kp_get_string(vm, 0, &len) : NULL;
    if (!name || len == 0 || len > 64 || memchr(name, '/', len)) return kp_error(vm, "create wants a plain file name");
    char path[256];
    snprintf(path, sizeof path, "%s/%.*s", dir, (int)len, name);
    FILE *fp = fopen(path, "w");
    if (!fp) return kp_error(vm, "cannot create %s", path);
    File *f = kp_new_object(vm, 0, file_type); /* the result, in slot 0 */
    if (!f) {
        fclose(fp);
        return KP_ERR_RUNTIME;
    }
    f->fp = fp;
    snprintf(f->path, sizeof f->path, "%s", path);
    return KP_OK;
}

/* write_line(f: $&File, line: String) -> Int (lines so far) */
static int c_write_line(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    File *f = kp_get_object(vm, 0, file_type);
    size_t len = 0;
    const char *s = kp_get_string(vm, 1, &len);
    if (!f || !s) return kp_error(vm, "write_line wants a File and a String");
    fprintf(f->fp, "%.*s\n", (int)len, s);
    return kp_set_int(vm, 0, ++f->lines);
}

/* lines_written(f: &File) -> Int */
static int c_lines_written(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    File *f = kp_get_object(vm, 0, file_type);
    if (!f) return kp_error(vm, "not a File");
    return kp_set_int(vm, 0, f->lines);
}

static const char script[] =
    "report (f: $&File, title: String, xs: &List#(Int)) -> () := {\n"
    "    write_line(f, \"# \" + title)\n"
    "    for x in xs { write_line(f, str(x) + \" squared is \" + str(x * x)) }\n"
    "}\n"
    "describe (f: &File) -> String := { return \"a file with \" + str(lines_written(f)) + \" lines\" }\n"
    "{\n"
    "    squares := create(\"squares.txt\")\n"
    "    nums := [1, 2, 3]\n"
    "    report($&squares, \"squares\", &nums)\n"
    "    print(describe(&squares))\n"
    "}                                  -- squares is closed here\n"
    "keep_open := create(\"log.txt\")    -- a global: closed by kp_vm_free\n"
    "write_line($&keep_open, \"started\")\n"
    "print(keep_open)\n";

static void show(const char *name) {
    char path[256], line[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "r");
    printf("%s:\n", name);
    while (fp && fgets(line, sizeof line, fp)) printf("    %s", line);
    if (fp) fclose(fp);
    remove(path);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/keep-file-host-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    KpVM *vm = kp_vm_new(NULL);
    if (!vm) return 1;
    KpMethod methods[] = {
        {"write_line", c_write_line, 2, (const KpMode[]){KP_MODE_MUTREF, KP_MODE_VALUE}},
        {"lines_written", c_lines_written, 1, NULL},
    };
    file_type = kp_define_type(vm, "File", &(KpTypeDef){.size = sizeof(File), .deinit = file_deinit,
                                                         .methods = methods, .nmethods = 2});
    kp_register(vm, "create", c_create, 1, NULL, NULL);
    int rc = kp_vm_run_string(vm, "files.kp", script, strlen(script));
    printf("run: %d, files closed so far: %d\n", rc, closed);
    /* a script cannot forge one */
    const char forge[] = "f := File()\n";
    rc = kp_vm_run_string(vm, "forge.kp", forge, strlen(forge));
    printf("forging a File: %s\n", rc == KP_OK ? "allowed (wrong!)" : "refused");
    kp_vm_free(vm);
    printf("after kp_vm_free: %d files closed\n", closed);
    show("squares.txt");
    show("log.txt");
    rmdir(dir);
    return 0;
}
