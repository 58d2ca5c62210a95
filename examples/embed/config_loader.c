/*
 * config_loader.c — a host that keeps its configuration in Keep.
 *
 * The configuration (examples/embed/config_loader.kp) is a Keep program:
 * records, lists and values computed by a loop.  The host runs it, reads
 * the top-level variable `config` through slots (kp_get_global,
 * kp_get_field, kp_list_get) into a plain C struct, and prints it.  Every
 * byte the VM uses comes from a counting host allocator (KpConfig.alloc);
 * after kp_vm_free its count is back to zero.  A second VM loads a broken
 * configuration to show how errors come back: a code and a message with
 * file:line:col, never an exit().
 *
 * Run from the repository root: build/embed/config_loader [file.kp]
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include <keep.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- the counting allocator */

typedef struct Counter {
    long blocks;     /* live blocks */
    long bytes;      /* live bytes */
    long total;      /* allocations ever made */
} Counter;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size, size_t align) {
    Counter *c = ud;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (new_size == 0) {
        if (ptr) {
            free(ptr);
            c->blocks--;
            c->bytes -= (long)old_size;
        }
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, align, new_size) != 0) return NULL;
    if (ptr) {
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
        free(ptr);
        c->bytes -= (long)old_size;
    } else {
        c->blocks++;
        c->total++;
    }
    c->bytes += (long)new_size;
    return p;
}

/* ------------------------------------------------------ the C-side struct */

enum { MAX_SERVERS = 16, MAX_TAGS = 8, TEXT = 64 };

typedef struct ServerConfig {
    char host[TEXT];
    int port;
    bool tls;
} ServerConfig;

typedef struct ServiceConfig {
    char name[TEXT];
    ServerConfig servers[MAX_SERVERS];
    int nservers;
    int max_connections;
    double timeout_s;
    char tags[MAX_TAGS][TEXT];
    int ntags;
} ServiceConfig;

/* Slots used while loading. */
enum { S_CONFIG, S_LIST, S_ITEM, S_FIELD, NSLOTS };

static int fail(KpVM *vm, const char *what) {
    fprintf(stderr, "config: %s: %s\n", what, kp_vm_last_error(vm));
    return 0;
}

static int read_string(KpVM *vm, int slot, char *dst, size_t cap) {
    size_t len;
    const char *s = kp_get_string(vm, slot, &len);
    if (!s) return 0;
    snprintf(dst, cap, "%.*s", (int)len, s);
    return 1;
}

/* Reads record `rec` field `name` (a String) into dst. */
static int field_string(KpVM *vm, int rec, const char *name, char *dst, size_t cap) {
    return kp_get_field(vm, rec, name, S_FIELD) == KP_OK && read_string(vm, S_FIELD, dst, cap);
}

static int field_int(KpVM *vm, int rec, const char *name, int *dst) {
    int64_t v;
    if (kp_get_field(vm, rec, name, S_FIELD) != KP_OK || kp_get_int(vm, S_FIELD, &v) != KP_OK) return 0;
    *dst = (int)v;
    return 1;
}

static int load(KpVM *vm, ServiceConfig *out) {
    memset(out, 0, sizeof *out);
    if (kp_slots_ensure(vm, NSLOTS) != KP_OK) return fail(vm, "slots");
    if (kp_get_global(vm, "config", S_CONFIG) != KP_OK) return fail(vm, "config");
    if (kp_get_kind(vm, S_CONFIG) != KP_KIND_RECORD) {
        fprintf(stderr, "config: `config` is a %s, not a record\n", kp_get_type_name(vm, S_CONFIG));
        return 0;
    }
    if (!field_string(vm, S_CONFIG, "name", out->name, sizeof out->name)) return fail(vm, "name");

    /* servers: a List#(Server) */
    if (kp_get_field(vm, S_CONFIG, "servers", S_LIST) != KP_OK) return fail(vm, "servers");
    int64_t n = kp_get_count(vm, S_LIST);
    for (int64_t i = 0; i < n && i < MAX_SERVERS; i++) {
        ServerConfig *s = &out->servers[out->nservers++];
        bool tls;
        if (kp_list_get(vm, S_LIST, i, S_ITEM) != KP_OK) return fail(vm, "servers[i]");
        if (!field_string(vm, S_ITEM, "host", s->host, sizeof s->host)) return fail(vm, "host");
        if (!field_int(vm, S_ITEM, "port", &s->port)) return fail(vm, "port");
        if (kp_get_field(vm, S_ITEM, "tls", S_FIELD) != KP_OK || kp_get_bool(vm, S_FIELD, &tls) != KP_OK)
            return fail(vm, "tls");
        s->tls = tls;
    }

    /* limits: a nested record */
    if (kp_get_field(vm, S_CONFIG, "limits", S_ITEM) != KP_OK) return fail(vm, "limits");
    if (!field_int(vm, S_ITEM, "max_connections", &out->max_connections)) return fail(vm, "max_connections");
    if (kp_get_field(vm, S_ITEM, "timeout_s", S_FIELD) != KP_OK || kp_get_float(vm, S_FIELD, &out->timeout_s) != KP_OK)
        return fail(vm, "timeout_s");

    /* tags: a List#(String) */
    if (kp_get_field(vm, S_CONFIG, "tags", S_LIST) != KP_OK) return fail(vm, "tags");
    n = kp_get_count(vm, S_LIST);
    for (int64_t i = 0; i < n && i < MAX_TAGS; i++) {
        if (kp_list_get(vm, S_LIST, i, S_ITEM) != KP_OK) return fail(vm, "tags[i]");
        if (!read_string(vm, S_ITEM, out->tags[out->ntags++], TEXT)) return fail(vm, "tag");
    }
    return 1;
}

static void print_config(const ServiceConfig *c) {
    printf("service %s\n", c->name);
    for (int i = 0; i < c->nservers; i++)
        printf("  server %-18s port %d%s\n", c->servers[i].host, c->servers[i].port, c->servers[i].tls ? " (tls)" : "");
    printf("  limits: %d connections, timeout %.1f s\n", c->max_connections, c->timeout_s);
    printf("  tags:");
    for (int i = 0; i < c->ntags; i++) printf(" %s", c->tags[i]);
    printf("\n");
}

/* Diagnostics of the broken configuration go here instead of stderr. */
static void capture(void *ud, const char *bytes, size_t len) {
    (void)bytes;
    *(size_t *)ud += len;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "examples/embed/config_loader.kp";
    Counter counter = {0};
    KpConfig cfg = {.alloc = counting_alloc, .alloc_ud = &counter};

    KpVM *vm = kp_vm_new(&cfg);
    if (!vm) {
        fprintf(stderr, "config: out of memory\n");
        return 1;
    }
    int rc = kp_vm_run_file(vm, path);
    ServiceConfig c;
    int ok = rc == KP_OK && load(vm, &c);
    if (rc != KP_OK) fprintf(stderr, "config: %s: error %d: %s\n", path, rc, kp_vm_last_error(vm));
    if (ok) print_config(&c);
    /* (exact counts depend on the VM's internals: only their sign is printed) */
    printf("while loaded: %s blocks live in the host allocator\n", counter.blocks > 0 ? "some" : "no");
    kp_vm_free(vm);
    printf("after kp_vm_free: %ld blocks, %ld bytes live\n", counter.blocks, counter.bytes);
    if (!ok || counter.blocks != 0 || counter.bytes != 0) return 1;

    /* A broken configuration: the host gets a code and a located message. */
    size_t diag = 0;
    KpConfig bad_cfg = {.alloc = counting_alloc, .alloc_ud = &counter, .write_err = capture, .ud = &diag};
    vm = kp_vm_new(&bad_cfg);
    if (!vm) return 1;
    static const char bad[] =
        "Limits : Type = ( .max_connections : Int )\n"
        "config := Limits(.max_connections = \"many\")\n";
    rc = kp_vm_run_string(vm, "bad.kp", bad, sizeof bad - 1);
    printf("broken config: code %d, %s\n", rc, kp_vm_last_error(vm));
    kp_vm_free(vm);
    printf("after kp_vm_free: %ld blocks, %ld bytes live\n", counter.blocks, counter.bytes);
    return counter.blocks == 0 && counter.bytes == 0 && rc != KP_OK && diag > 0 ? 0 : 1;
}
