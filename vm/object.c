/*
 * object.c — creating, dropping, cloning, comparing and printing values.
 *
 * Dropping is iterative: a value's children go on a work stack instead of
 * the C stack, so a million-long chain of records cannot overflow the
 * interpreter.  The order is still depth-first, the same as a recursive
 * drop: a record's user deinit runs first, then its fields, last field
 * first, each completely before the next.
 */
#include "object.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"
#include "binary.h"

#define LOC NULL

const KpSrcLoc *kp_vm_loc(KpVM *vm, KpAllocator *a) {
    if (!(a->flags & KP_ALLOC_WANTS_LOC) || !vm->nframes) return NULL;
    KpFrame *f = &vm->frames[vm->nframes - 1];
    if (!f->proto || !f->pc) return NULL;
    size_t off = (size_t)(f->pc - f->proto->code);
    if (off) off--;
    if (off >= f->proto->ncode) return NULL;
    vm->loc.file = f->proto->src ? f->proto->src->name : NULL;
    vm->loc.line = f->proto->lines[off].line;
    vm->loc.col = f->proto->lines[off].col;
    return &vm->loc;
}

bool kp_oom_error(KpVM *vm, KpAllocator *a, size_t size) {
    /* the limit refused it (perhaps a chunk or slab for this request):
     * the message says so */
    int64_t refusals = __atomic_load_n(&vm->acct.refusals, __ATOMIC_RELAXED);
    bool limited = refusals != vm->acct_refusals_seen ||
                   (vm->acct.limit >= 0 && __atomic_load_n(&vm->acct.used, __ATOMIC_RELAXED) + (int64_t)size > vm->acct.limit);
    vm->acct_refusals_seen = refusals;
    if (limited)
        return kp_vm_error(vm, "out of memory: %s cannot allocate %zu bytes (limit %lld bytes, %lld in use)", a->name,
                           size, (long long)vm->acct.limit, (long long)__atomic_load_n(&vm->acct.used, __ATOMIC_RELAXED));
    if (a->limit >= 0)
        return kp_vm_error(vm, "out of memory: %s cannot allocate %zu bytes (limit %lld bytes, %lld in use)", a->name,
                           size, (long long)a->limit, (long long)a->stats.live_bytes);
    return kp_vm_error(vm, "out of memory: %s cannot allocate %zu bytes", a->name, size);
}

static uint32_t block_new(KpVM *vm);

void *kp_obj_new(KpVM *vm, KpAllocator *a, KpTag kind, size_t size) {
    KpObj *o = kp_alloc(a, size, 16, kp_vm_loc(vm, a));
    if (!o) {
        kp_oom_error(vm, a, size);
        return NULL;
    }
    memset(o, 0, size);
    o->kind = (uint8_t)kind;
    o->alloc = a;
    /* o->block stays 0 until a reference into the object is made */
    return o;
}

/* kp_obj_new without zeroing the body: for the kinds whose constructor
 * writes every field (strings, lists). */
static void *obj_new_raw(KpVM *vm, KpAllocator *a, KpTag kind, size_t size) {
    KpObj *o = kp_alloc(a, size, 16, kp_vm_loc(vm, a));
    if (!o) {
        kp_oom_error(vm, a, size);
        return NULL;
    }
    *o = (KpObj){.kind = (uint8_t)kind, .alloc = a};
    return o;
}

/* ------------------------------------------------------------ blocks */

_Thread_local KpVM *kp_tls_vm __attribute__((tls_model("initial-exec")));

/* Freed ids are reused last-in first-out, which keeps the table's hot
 * entries in cache; where each block died is kept in a small ring (the
 * graveyard) for the error message of a stale reference. */
_Thread_local bool kp_tls_par __attribute__((tls_model("initial-exec")));

static uint32_t block_new_in(KpVM *vm);

/* In a parallel worker (vm/parallel.c) the block table is the running
 * VM's, shared by every worker: taken under the lock.  The table does not
 * move then — it was grown before the workers started and a worker's
 * copy of the VM sees all of it (nblocks = cap_blocks, the entries not in
 * use zero: dead) — so the checks that read it need no lock. */
static uint32_t block_new(KpVM *vm) {
    if (!vm->par) return block_new_in(vm);
    KpVM *root = vm->par->root;
    pthread_mutex_lock(&vm->par->lock);
    uint32_t id = 0;
    if (root->free_block || root->nblocks < root->cap_blocks) id = block_new_in(root);
    pthread_mutex_unlock(&vm->par->lock);
    return id;
}

static uint32_t block_new_in(KpVM *vm) {
    if (vm->free_block) {
        uint32_t id = vm->free_block;
        vm->free_block = vm->blocks[id].next_free;
        vm->blocks[id].alive = 1;
        return id;
    }
    if (vm->nblocks == vm->cap_blocks) {
        uint32_t ncap = vm->cap_blocks ? vm->cap_blocks * 2 : 1024;
        struct KpBlock *n = kp_realloc(vm->rt, vm->blocks, sizeof(struct KpBlock) * vm->cap_blocks,
                                       sizeof(struct KpBlock) * ncap, 16, NULL);
        if (!n) return 0; /* 0: no block — references into it stay unchecked */
        vm->blocks = n;
        vm->cap_blocks = ncap;
        if (vm->nblocks == 0) { memset(&vm->blocks[0], 0, sizeof vm->blocks[0]); vm->nblocks = 1; }
    }
    uint32_t id = vm->nblocks++;
    vm->blocks[id] = (struct KpBlock){0, 1, 0};
    return id;
}

static uint32_t here(KpVM *vm) {
    if (!vm->nframes) return 0;
    KpFrame *f = &vm->frames[vm->nframes - 1];
    if (!f->proto || !f->pc) return 0;
    size_t off = (size_t)(f->pc - f->proto->code);
    if (off) off--;
    if (off >= f->proto->ncode) return 0;
    return KP_POS_PACK(f->proto->lines[off].line, f->proto->lines[off].col);
}

static void block_end_in(KpVM *vm, KpVM *here_vm, uint32_t id, const char *what);

static void block_end(KpVM *vm, uint32_t id, const char *what) {
    if (!vm->par) {
        block_end_in(vm, vm, id, what);
        return;
    }
    pthread_mutex_lock(&vm->par->lock);
    block_end_in(vm->par->root, vm, id, what);
    pthread_mutex_unlock(&vm->par->lock);
}

static void block_end_in(KpVM *vm, KpVM *here_vm, uint32_t id, const char *what) {
    if (!id || id >= vm->nblocks) return;
    struct KpBlock *b = &vm->blocks[id];
    if (!vm->graves && (vm->graves = kp_alloc(vm->host, sizeof(struct KpGrave) * KP_GRAVES, 8, NULL)))
        memset(vm->graves, 0, sizeof(struct KpGrave) * KP_GRAVES);
    if (vm->graves) { /* (out of memory, the message is less precise) */
        struct KpGrave *g = &vm->graves[vm->next_grave++ & (KP_GRAVES - 1)];
        g->id = id;
        g->gen = b->gen;
        g->pos = here(here_vm);
        g->what = what;
    }
    b->alive = 0;
    if (++b->gen == 0xffff) return; /* retired: never reused, so no generation repeats */
    b->next_free = vm->free_block;
    vm->free_block = id;
}

void kp_block_release(KpObj *o, const char *what) {
    if (!o->block) return;
    KpVM *vm = kp_tls_vm;
    if (vm) block_end(vm, o->block, what);
    o->block = 0;
}

void kp_block_renew(KpObj *o, const char *why) {
    if (!o->block) return; /* nothing refers into it */
    KpVM *vm = kp_tls_vm;
    if (!vm) return;
    block_end(vm, o->block, why);
    o->block = 0; /* a new block when the next reference is made */
}

static const char *obj_what(KpObj *o) {
    switch (o->kind) {
    case KP_T_RECORD: return ((KpRecord *)o)->type->name;
    case KP_T_LIST: return "List";
    case KP_T_MAP: return "HashMap";
    case KP_T_BOX: return "kept value";
    case KP_T_HEAP: return "HeapAllocation";
    case KP_T_ALLOCATOR: return "Allocator";
    case KP_T_BIN: return kp_bin_kind_name(((KpBinObj *)o)->bkind);
    default: return "value";
    }
}

/* A worker's first reference into an object: another worker may be
 * making one into the same (shared) object, so the object's entry is
 * given under the lock, once. */
static uint32_t block_of_shared(KpVM *vm, KpObj *owner) {
    uint32_t id = __atomic_load_n(&owner->block, __ATOMIC_ACQUIRE);
    if (id) return id;
    KpVM *root = vm->par->root;
    pthread_mutex_lock(&vm->par->lock);
    id = owner->block;
    if (!id && (root->free_block || root->nblocks < root->cap_blocks)) {
        id = block_new_in(root);
        __atomic_store_n(&owner->block, id, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&vm->par->lock);
    return id;
}

bool kp_blocks_reserve(KpVM *vm, uint32_t spare) {
    if (vm->nblocks == 0) {
        if (!block_new_in(vm)) return false; /* entry 0 (none) exists */
        block_end_in(vm, vm, 1, NULL);
    }
    if (vm->cap_blocks - vm->nblocks >= spare) return true;
    uint32_t ncap = vm->nblocks + spare;
    struct KpBlock *n = kp_realloc(vm->rt, vm->blocks, sizeof(struct KpBlock) * vm->cap_blocks,
                                   sizeof(struct KpBlock) * ncap, 16, NULL);
    if (!n) return false;
    memset(n + vm->cap_blocks, 0, sizeof(struct KpBlock) * (ncap - vm->cap_blocks));
    vm->blocks = n;
    vm->cap_blocks = ncap;
    return true;
}

KpValue kp_make_ref(KpVM *vm, KpValue *slot, KpObj *owner, uint8_t flags) {
    KpValue r = kp_ptr(KP_T_REF, slot);
    r.flags = (uint8_t)(flags & ~(KP_VF_HEAP | KP_VF_STATIC));
    if (slot >= vm->stack && slot < vm->stack_end) {
        r.aux = vm->reg_gen[slot - vm->stack];
    } else if (owner && (vm->par ? (r.aux = block_of_shared(vm, owner)) != 0
                                 : (owner->block || (owner->block = block_new(vm))))) {
        r.flags |= KP_VF_HEAP;
        if (!vm->par) r.aux = owner->block;
        r.x = vm->blocks[r.aux].gen;
    } else if (owner) {
        /* out of memory for the block table: an unchecked reference could
         * outlive its owner, so there is none */
        kp_vm_error(vm, "out of memory: no room to track a reference");
        return kp_unset();
    } else {
        r.flags |= KP_VF_STATIC;
    }
    return r;
}

KpValue kp_ref_dead(KpValue r) {
    KpVM *vm = kp_tls_vm;
    KpValue d = {.tag = KP_T_MOVED, .flags = KP_VF_DEAD};
    d.p = (void *)"a local variable that went out of scope";
    if (vm && (r.flags & KP_VF_HEAP)) {
        d.p = (void *)"a value";
        for (uint32_t i = 0; vm->graves && i < KP_GRAVES; i++) {
            struct KpGrave *g = &vm->graves[i];
            if (g->id == r.aux && g->gen == r.x && g->what) {
                d.aux = g->pos;
                d.p = (void *)g->what;
                break;
            }
        }
    }
    return d;
}

static void obj_free(KpObj *o, size_t size) {
    if (o->block) kp_block_release(o, obj_what(o));
    kp_free(o->alloc, o, size, 16, LOC);
}

/* ------------------------------------------------------------- strings */

uint32_t kp_hash_bytes(const char *s, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

KpString *kp_str_new(KpVM *vm, KpAllocator *a, const char *bytes, size_t len) {
    if (len > UINT32_MAX - 64) {
        kp_vm_error(vm, "string too long (%zu bytes)", len);
        return NULL;
    }
    KpString *s = obj_new_raw(vm, a, KP_T_STR, sizeof(KpString) + len + 1);
    if (!s) return NULL;
    s->rc = 1;
    s->len = (uint32_t)len;
    if (len) memcpy(s->data, bytes, len);
    s->data[len] = 0;
    s->hash = kp_hash_bytes(bytes, len);
    return s;
}

int kp_str_char_len(const KpString *s, uint32_t i) {
    const unsigned char *p = (const unsigned char *)s->data + i;
    uint32_t n = s->len - i;
    unsigned c = p[0];
    int k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if ((uint32_t)k > n) return 1;
    for (int j = 1; j < k; j++)
        if ((p[j] & 0xC0) != 0x80) return 1;
    return k;
}

static size_t str_size(KpString *s) { return sizeof(KpString) + s->len + 1; }

/* ------------------------------------------------------------- records */

KpRecord *kp_record_new(KpVM *vm, KpType *t) {
    if (t->host) { /* (kp_host_object_new is the host's way) */
        kp_vm_error(vm, "cannot create a %s: it is a host type, whose values only the host makes", t->name);
        return NULL;
    }
    KpRecord *r = kp_obj_new(vm, vm->ctx, KP_T_RECORD,
                             sizeof(KpRecord) + sizeof(KpValue) * t->nfields);
    if (r) r->type = t;
    return r;
}

KpRecord *kp_host_object_new(KpVM *vm, KpType *t) {
    KpRecord *r = kp_obj_new(vm, vm->heap, KP_T_RECORD, sizeof(KpRecord) + KP_HOST_BYTES(t));
    if (r) {
        r->type = t;
        memset(KP_HOST_PAYLOAD(r), 0, KP_HOST_BYTES(t));
    }
    return r;
}

static size_t rec_size(KpRecord *r) {
    if (r->type->host) return sizeof(KpRecord) + KP_HOST_BYTES(r->type);
    return sizeof(KpRecord) + sizeof(KpValue) * r->type->nfields;
}

/* --------------------------------------------------------------- lists */

KpList *kp_list_new(KpVM *vm, uint32_t cap) {
    KpList *l = obj_new_raw(vm, vm->ctx, KP_T_LIST, sizeof(KpList));
    if (!l) return NULL;
    l->elem = NULL;
    l->items = NULL;
    l->len = l->cap = 0;
    if (cap) {
        l->items = kp_alloc(vm->ctx, sizeof(KpValue) * cap, 16, kp_vm_loc(vm, vm->ctx));
        if (!l->items) {
            obj_free(&l->h, sizeof(KpList));
            kp_oom_error(vm, vm->ctx, sizeof(KpValue) * cap);
            return NULL;
        }
        l->cap = cap;
    }
    return l;
}

bool kp_list_push(KpVM *vm, KpList *l, KpValue v) {
    if (l->len == l->cap) {
        uint32_t ncap = l->cap ? l->cap * 2 : 4;
        if (ncap < l->cap || ncap > (1u << 28)) {
            kp_drop(vm, v);
            return kp_vm_error(vm, "list too long");
        }
        KpValue *n = kp_realloc(l->h.alloc, l->items, sizeof(KpValue) * l->cap,
                                sizeof(KpValue) * ncap, 16, kp_vm_loc(vm, l->h.alloc));
        if (!n) {
            kp_drop(vm, v);
            return kp_oom_error(vm, l->h.alloc, sizeof(KpValue) * ncap);
        }
        if (n != l->items) kp_block_renew(&l->h, "an element of a list that grew (its storage moved)");
        l->items = n;
        l->cap = ncap;
    }
    l->items[l->len++] = v;
    return true;
}

/* ---------------------------------------------------------------- maps */

KpMap *kp_map_new(KpVM *vm) {
    return kp_obj_new(vm, vm->ctx, KP_T_MAP, sizeof(KpMap));
}

static uint32_t value_hash(KpValue k) {
    switch (k.tag) {
    case KP_T_STR: return ((KpString *)k.p)->hash;
    case KP_T_FLOAT: {
        double d = k.f;
        if (d == (double)(int64_t)d) return (uint32_t)((uint64_t)(int64_t)d * 0x9E3779B97F4A7C15ull >> 32);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return (uint32_t)(bits * 0x9E3779B97F4A7C15ull >> 32);
    }
    default: return (uint32_t)((uint64_t)k.i * 0x9E3779B97F4A7C15ull >> 32) ^ k.tag;
    }
}

static bool map_key_ok(KpValue k) {
    return k.tag == KP_T_STR || k.tag == KP_T_INT || k.tag == KP_T_BOOL ||
           k.tag == KP_T_FLOAT || KP_IS_SIZED_INT(k.tag);
}

KpMapEntry *kp_map_find(KpMap *m, KpValue key) {
    if (!m->icap) return NULL;
    uint32_t mask = m->icap - 1, i = value_hash(key) & mask;
    if (key.tag == KP_T_STR) { /* the common case, compared inline */
        const KpString *k = key.p;
        for (;;) {
            int32_t e = m->index[i];
            if (e < 0) return NULL;
            KpValue ek = m->entries[e].key;
            if (ek.tag == KP_T_STR) {
                const KpString *s = ek.p;
                if (s == k || (s->hash == k->hash && s->len == k->len && memcmp(s->data, k->data, k->len) == 0))
                    return &m->entries[e];
            }
            i = (i + 1) & mask;
        }
    }
    for (;;) {
        int32_t e = m->index[i];
        if (e < 0) return NULL;
        if (kp_equal(m->entries[e].key, key) &&
            m->entries[e].key.tag != KP_T_UNSET)
            return &m->entries[e];
        i = (i + 1) & mask;
    }
}

static bool map_rehash(KpVM *vm, KpMap *m, uint32_t need) {
    /* compact entries (drop deleted) and rebuild the index */
    uint32_t ncap = m->cap ? m->cap : 4;
    while (ncap < need * 2 && ncap < need + 8) ncap *= 2;
    if (ncap < need) ncap = need;
    KpMapEntry *ne = kp_alloc(m->h.alloc, sizeof(KpMapEntry) * ncap, 16, LOC);
    uint32_t nicap = 8;
    while (nicap < ncap * 2) nicap *= 2;
    int32_t *ni = kp_alloc(m->h.alloc, sizeof(int32_t) * nicap, 16, LOC);
    if (!ne || !ni) {
        if (ne) kp_free(m->h.alloc, ne, sizeof(KpMapEntry) * ncap, 16, LOC);
        if (ni) kp_free(m->h.alloc, ni, sizeof(int32_t) * nicap, 16, LOC);
        return kp_vm_error(vm, "out of memory: %s cannot grow a map", m->h.alloc->name);
    }
    memset(ni, 0xff, sizeof(int32_t) * nicap);
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nentries; i++) {
        if (m->entries[i].key.tag == KP_T_UNSET) continue;
        ne[n] = m->entries[i];
        uint32_t j = value_hash(ne[n].key) & (nicap - 1);
        while (ni[j] >= 0) j = (j + 1) & (nicap - 1);
        ni[j] = (int32_t)n;
        n++;
    }
    if (m->entries) kp_free(m->h.alloc, m->entries, sizeof(KpMapEntry) * m->cap, 16, LOC);
    if (m->index) kp_free(m->h.alloc, m->index, sizeof(int32_t) * m->icap, 16, LOC);
    kp_block_renew(&m->h, "a value of a map that grew (its storage moved)");
    m->entries = ne;
    m->cap = ncap;
    m->index = ni;
    m->icap = nicap;
    m->nentries = n;
    return true;
}

bool kp_map_put(KpVM *vm, KpMap *m, KpValue key, KpValue val) {
    if (!map_key_ok(key)) {
        const char *tn = kp_value_type_name(vm, key);
        kp_drop(vm, key);
        kp_drop(vm, val);
        return kp_vm_error(vm, "a map key must be Int, Float, Bool or String, not %s", tn);
    }
    KpMapEntry *e = kp_map_find(m, key);
    if (e) {
        KpValue old = e->val;
        e->val = val;
        kp_drop(vm, key);
        return kp_drop(vm, old);
    }
    if (m->nentries == m->cap) {
        if (!map_rehash(vm, m, m->count + 1 > m->cap ? m->count + 1 : m->cap)) {
            kp_drop(vm, key);
            kp_drop(vm, val);
            return false;
        }
    }
    uint32_t n = m->nentries++;
    m->entries[n].key = key;
    m->entries[n].val = val;
    uint32_t mask = m->icap - 1, j = value_hash(key) & mask;
    while (m->index[j] >= 0) j = (j + 1) & mask;
    m->index[j] = (int32_t)n;
    m->count++;
    return true;
}

bool kp_map_remove(KpVM *vm, KpMap *m, KpValue key, KpValue *out) {
    KpMapEntry *e = kp_map_find(m, key);
    if (!e) return false;
    kp_block_renew(&m->h, "a value removed from its map");
    kp_drop(vm, e->key);
    e->key = kp_unset(); /* tombstone: the index still points here */
    *out = e->val;
    e->val = kp_unset();
    m->count--;
    return true;
}

/* ---------------------------------------------------------------- drop */

typedef KpValueStack DropStack;
static DropStack *dstack(KpVM *vm) { return &vm->dstack; }

/* The work stack lives in vm->rt (the host allocator, counted against
 * mem_limit); it grows with the depth of
 * what is dropped (two entries per kept box in a chain) and is given back
 * when an outermost drop leaves it large. */
static bool dpush(KpVM *vm, KpValue v) {
    DropStack *d = dstack(vm);
    if (d->len == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 64;
        KpValue *n = kp_realloc(vm->rt, d->items, sizeof(KpValue) * d->cap,
                                sizeof(KpValue) * ncap, 16, LOC);
        if (!n) return false;
        d->items = n;
        d->cap = ncap;
    }
    d->items[d->len++] = v;
    return true;
}

bool kp_drop_push(KpVM *vm, KpValue v) { return dpush(vm, v); }

/* The children of an object in the order they are dropped: a list's
 * elements first to last, a record's fields last to first, a map's
 * entries in order, each key before its value. */
static KpValue child_at(KpObj *o, uint32_t k) {
    switch (o->kind) {
    case KP_T_RECORD: {
        KpRecord *r = (KpRecord *)o;
        return r->f[r->type->nfields - 1 - k];
    }
    case KP_T_LIST: return ((KpList *)o)->items[k];
    default: {
        KpMapEntry *e = &((KpMap *)o)->entries[k / 2];
        return k % 2 ? e->val : e->key;
    }
    }
}

/* Puts the n children of o on the work stack, last first, so that they
 * are dropped in order.  When the stack cannot grow (out of memory), those
 * not pushed yet — due before every pushed one — are dropped at once,
 * nested, in their order: nothing leaks and every deinit still runs in
 * the order the language gives. */
static bool drop_children(KpVM *vm, KpObj *o, uint32_t n) {
    uint32_t m = 0;
    for (; m < n; m++) {
        KpValue c = child_at(o, n - 1 - m);
        if (KP_NEEDS_DROP(c) && !dpush(vm, c)) break;
    }
    bool ok = true;
    for (uint32_t k = 0; k + m < n; k++) {
        KpValue c = child_at(o, k);
        if (KP_NEEDS_DROP(c) && !kp_drop(vm, c)) ok = false;
    }
    return ok;
}

void kp_drop_stack_free(KpVM *vm) {
    DropStack *d = dstack(vm);
    if (d->items) kp_free(vm->rt, d->items, sizeof(KpValue) * d->cap, 16, LOC);
    d->items = NULL;
    d->len = d->cap = 0;
}

/* The second step of a record, list or map that kept boxes: once those
 * are released (they may still look at it), its own parts and memory. */
static bool drop_rest(KpVM *vm, KpObj *o) {
    bool ok = true;
    switch (o->kind) {
    case KP_T_RECORD: {
        KpRecord *r = (KpRecord *)o;
        ok = drop_children(vm, o, r->type->nfields);
        obj_free(&r->h, rec_size(r));
        break;
    }
    case KP_T_LIST: {
        KpList *l = (KpList *)o;
        ok = drop_children(vm, o, l->len);
        if (l->items) kp_free(l->h.alloc, l->items, sizeof(KpValue) * l->cap, 16, LOC);
        obj_free(&l->h, sizeof(KpList));
        break;
    }
    case KP_T_MAP: {
        KpMap *m = (KpMap *)o;
        ok = drop_children(vm, o, 2 * m->nentries);
        if (m->entries) kp_free(m->h.alloc, m->entries, sizeof(KpMapEntry) * m->cap, 16, LOC);
        if (m->index) kp_free(m->h.alloc, m->index, sizeof(int32_t) * m->icap, 16, LOC);
        obj_free(&m->h, sizeof(KpMap));
        break;
    }
    }
    return ok;
}

static bool drop_one(KpVM *vm, KpValue x);

/* An owner's kept boxes go on the stack above the rest of the owner: they
 * are released (newest first) while the owner is still whole. */
static bool drop_owner(KpVM *vm, KpObj *o) {
    if (!(o->flags & KP_OF_KEEPER)) return drop_rest(vm, o);
    KpValue rest = {.tag = KP_DROP_REST};
    rest.p = o;
    if (!dpush(vm, rest)) {
        /* no memory for the marker: the boxes are released now, all the
         * way down (what they push included), then the rest */
        DropStack *d = dstack(vm);
        size_t base = d->len;
        bool ok = kp_keep_release_owner(vm, o);
        while (d->len > base)
            if (!drop_one(vm, d->items[--d->len])) ok = false;
        return drop_rest(vm, o) && ok;
    }
    return kp_keep_release_owner(vm, o);
}

/* One step of kp_drop: releases x, putting what it owns on the work
 * stack. */
static bool drop_one(KpVM *vm, KpValue x) {
    bool ok = true;
    switch (x.tag) {
    case KP_T_STR: {
        KpString *s = x.p;
        if (!(s->h.flags & KP_OF_IMMORTAL) && kp_str_decref(s))
            obj_free(&s->h, str_size(s));
        break;
    }
    case KP_T_RECORD: {
        KpRecord *r = x.p;
        if (r->h.lock) {
            /* deinitialized when its last value goes (kp_script_allocator_end) */
            r->h.flags |= KP_OF_ORPHAN;
            ok = kp_vm_error(vm, "%s was deinitialized while it serves as the allocator of live values; it is kept until they are gone", r->type->name);
            break;
        }
        if (r->type->user_deinit && !(r->h.flags & KP_OF_DEINITED)) {
            KpValue slot = x;
            if (!kp_vm_call_deinit(vm, r->type->user_deinit, &slot)) ok = false;
        }
        if (r->type->host && r->type->host_deinit && !(r->h.flags & KP_OF_DEINITED)) {
            /* the host's deinit, exactly once; it may not call back in */
            r->h.flags |= KP_OF_DEINITED;
            bool was = vm->in_host_deinit;
            vm->in_host_deinit = true;
            r->type->host_deinit(KP_HOST_PAYLOAD(r), r->type->host_ud);
            vm->in_host_deinit = was;
        }
        /* then what it keeps, newest keep first, then its fields */
        if (!drop_owner(vm, &r->h)) ok = false;
        break;
    }
    case KP_T_LIST: {
        KpList *l = x.p;
        if (l->h.lock) {
            ok = kp_vm_error(vm, "a list was deinitialized while a for loop iterates over it; its memory is kept");
            break;
        }
        if (!drop_owner(vm, &l->h)) ok = false;
        break;
    }
    case KP_T_MAP: {
        KpMap *m = x.p;
        if (m->h.lock) {
            ok = kp_vm_error(vm, "a map was deinitialized while a for loop iterates over it; its memory is kept");
            break;
        }
        if (!drop_owner(vm, &m->h)) ok = false;
        break;
    }
    case KP_DROP_REST:
        if (!drop_rest(vm, x.p)) ok = false;
        break;
    case KP_DROP_BOX_FREE:
        kp_box_free(vm, x.p);
        break;
    case KP_T_HEAP:
        if (!kp_heap_drop(vm, x.p)) ok = false;
        break;
    case KP_T_BIN:
        if (!kp_bin_drop(vm, x.p)) ok = false;
        break;
    case KP_T_ALLOCATOR:
        if (!kp_alloc_obj_drop(vm, x.p)) ok = false;
        break;
    case KP_T_CTXSAVE:
        if (x.flags & 1) kp_script_allocator_end(vm, x.p);
        else vm->ctx = x.p;
        break;
    case KP_T_ITER:
        if (((KpObj *)x.p)->kind == KP_T_STR) { /* a loop over a string holds a count of it */
            KpString *s = x.p;
            if (!(s->h.flags & KP_OF_IMMORTAL) && kp_str_decref(s)) obj_free(&s->h, str_size(s));
        } else {
            kp_obj_lock_add(x.p, -1);
        }
        break;
    case KP_T_BOX:
        if (!kp_box_drop_count(vm, x.p)) ok = false;
        break;
    default:
        break;
    }
    return ok;
}

bool kp_drop(KpVM *vm, KpValue v) {
    if (!KP_NEEDS_DROP(v)) return true;
    if (v.tag == KP_T_STR) {
        KpString *s = v.p;
        if (s->h.flags & KP_OF_IMMORTAL) return true;
        if (kp_str_decref(s)) obj_free(&s->h, str_size(s));
        return true;
    }
    DropStack *d = dstack(vm);
    size_t base = d->len;
    bool ok = drop_one(vm, v);
    while (d->len > base)
        if (!drop_one(vm, d->items[--d->len])) ok = false;
    if (base == 0 && d->cap > 4096) kp_drop_stack_free(vm); /* a deep drop is over */
    return ok;
}

/* --------------------------------------------------------------- clone */

static bool clone_rec(KpVM *vm, KpValue v, KpValue *out, int depth) {
    if (depth > 10000) return kp_vm_error(vm, "value nested too deeply to clone");
    v = kp_deref(v);
    switch (v.tag) {
    case KP_T_STR: {
        KpString *s = v.p;
        if ((s->h.flags & KP_OF_IMMORTAL) || s->h.alloc == vm->ctx) {
            kp_str_incref(s);
            *out = v;
            return true;
        }
        /* a copy in the context allocator: the clone must not depend on
         * the allocator the original came from */
        KpString *c = kp_str_new(vm, vm->ctx, s->data, s->len);
        if (!c) return false;
        *out = kp_ptr(KP_T_STR, c);
        return true;
    }
    case KP_T_RECORD: {
        KpRecord *r = v.p;
        if (r->type->host) return kp_vm_error(vm, "a %s cannot be copied: it is a host type (move it or borrow it)", r->type->name);
        KpRecord *n = kp_record_new(vm, r->type);
        if (!n) return false;
        for (uint32_t i = 0; i < r->type->nfields; i++) {
            if (r->f[i].tag == KP_T_MOVED) { n->f[i] = kp_unset(); continue; }
            if (!clone_rec(vm, r->f[i], &n->f[i], depth + 1)) {
                kp_drop(vm, kp_ptr(KP_T_RECORD, n));
                return false;
            }
        }
        *out = kp_ptr(KP_T_RECORD, n);
        return true;
    }
    case KP_T_LIST: {
        KpList *l = v.p;
        KpList *n = kp_list_new(vm, l->len);
        if (!n) return false;
        n->elem = l->elem;
        for (uint32_t i = 0; i < l->len; i++) {
            if (!clone_rec(vm, l->items[i], &n->items[i], depth + 1)) {
                kp_drop(vm, kp_ptr(KP_T_LIST, n));
                return false;
            }
            n->len++;
        }
        *out = kp_ptr(KP_T_LIST, n);
        return true;
    }
    case KP_T_MAP: {
        KpMap *m = v.p;
        KpMap *n = kp_map_new(vm);
        if (!n) return false;
        n->ktype = m->ktype;
        n->vtype = m->vtype;
        KpValue nv = kp_ptr(KP_T_MAP, n);
        for (uint32_t i = 0; i < m->nentries; i++) {
            if (m->entries[i].key.tag == KP_T_UNSET) continue;
            KpValue k, x;
            if (!clone_rec(vm, m->entries[i].key, &k, depth + 1)) { kp_drop(vm, nv); return false; }
            if (!clone_rec(vm, m->entries[i].val, &x, depth + 1)) { kp_drop(vm, k); kp_drop(vm, nv); return false; }
            if (!kp_map_put(vm, n, k, x)) { kp_drop(vm, nv); return false; }
        }
        *out = nv;
        return true;
    }
    case KP_T_HEAP: {
        KpHeapAlloc *h = v.p;
        KpHeapAlloc *n = kp_obj_new(vm, vm->ctx, KP_T_HEAP, sizeof(KpHeapAlloc));
        if (!n) return false;
        /* a mapped file's clone is ordinary memory from the context allocator */
        KpAllocator *from = h->from ? h->from : vm->ctx;
        size_t align = h->align ? h->align : 16;
        if (h->size) {
            n->data = kp_alloc(from, (size_t)h->size, align, kp_vm_loc(vm, from));
            if (!n->data) {
                obj_free(&n->h, sizeof(KpHeapAlloc));
                return kp_oom_error(vm, from, (size_t)h->size);
            }
            memcpy(n->data, h->data, (size_t)h->size);
        }
        n->size = h->size;
        n->from = from;
        n->from_self = h->from ? h->from_self : NULL;
        n->align = (uint32_t)align;
        *out = kp_ptr(KP_T_HEAP, n);
        return true;
    }
    case KP_T_MOVED:
        return kp_vm_error(vm, "cannot clone a moved value");
    case KP_T_UNSET:
        return kp_vm_error(vm, "cannot clone an unset value");
    default:
        if (v.tag >= KP_T_HEAP)
            return kp_vm_error(vm, "%s values cannot be cloned", kp_value_type_name(vm, v));
        *out = v;
        return true;
    }
}

bool kp_clone(KpVM *vm, KpValue v, KpValue *out) { return clone_rec(vm, v, out, 0); }

/* ------------------------------------------------------------ equality */

/* 1 equal, 0 not, -1 nested deeper than KP_EQUAL_DEPTH (no answer). */
static int equal_rec(KpValue a, KpValue b, int depth) {
    a = kp_deref(a);
    b = kp_deref(b);
    if (depth > KP_EQUAL_DEPTH) return -1;
    if (a.tag != b.tag) {
        /* Int and Float compare by value; sized ints compare with Int */
        bool an = a.tag == KP_T_INT || a.tag == KP_T_FLOAT || KP_IS_SIZED_INT(a.tag);
        bool bn = b.tag == KP_T_INT || b.tag == KP_T_FLOAT || KP_IS_SIZED_INT(b.tag);
        if (!an || !bn) return false;
        if (a.tag == KP_T_FLOAT || b.tag == KP_T_FLOAT) {
            double x = a.tag == KP_T_FLOAT ? a.f : (double)a.i;
            double y = b.tag == KP_T_FLOAT ? b.f : (double)b.i;
            return x == y;
        }
        if (a.tag == KP_T_U64 || b.tag == KP_T_U64) {
            if ((a.tag != KP_T_U64 && a.i < 0) || (b.tag != KP_T_U64 && b.i < 0)) return false;
        }
        return a.i == b.i;
    }
    switch (a.tag) {
    case KP_T_UNIT: return true;
    case KP_T_FLOAT: return a.f == b.f;
    case KP_T_STR: {
        KpString *x = a.p, *y = b.p;
        return x == y || (x->len == y->len && x->hash == y->hash &&
                          memcmp(x->data, y->data, x->len) == 0);
    }
    case KP_T_RECORD: {
        KpRecord *x = a.p, *y = b.p;
        if (x->type != y->type) return false;
        if (x->type->host) return x == y; /* host values: the same one */
        for (uint32_t i = 0; i < x->type->nfields; i++) {
            int r = equal_rec(x->f[i], y->f[i], depth + 1);
            if (r != 1) return r;
        }
        return true;
    }
    case KP_T_LIST: {
        KpList *x = a.p, *y = b.p;
        if (x->len != y->len) return false;
        for (uint32_t i = 0; i < x->len; i++) {
            int r = equal_rec(x->items[i], y->items[i], depth + 1);
            if (r != 1) return r;
        }
        return true;
    }
    case KP_T_MAP: {
        KpMap *x = a.p, *y = b.p;
        if (x->count != y->count) return false;
        for (uint32_t i = 0; i < x->nentries; i++) {
            if (x->entries[i].key.tag == KP_T_UNSET) continue;
            KpMapEntry *e = kp_map_find(y, x->entries[i].key);
            if (!e) return false;
            int r = equal_rec(x->entries[i].val, e->val, depth + 1);
            if (r != 1) return r;
        }
        return true;
    }
    default:
        return a.i == b.i;
    }
}

bool kp_equal(KpValue a, KpValue b) { return equal_rec(a, b, 0) == 1; }

bool kp_equal_checked(KpVM *vm, KpValue a, KpValue b, bool *eq) {
    int r = equal_rec(a, b, 0);
    *eq = r == 1;
    if (r >= 0) return true;
    return kp_vm_error(vm, "values nested more than %d levels deep cannot be compared", KP_EQUAL_DEPTH);
}

/* ------------------------------------------------------------ printing */

static bool add(KpVM *vm, const char *s) { return kp_buf_add(vm, &vm->scratch, s, strlen(s)); }

static bool add_quoted(KpVM *vm, KpString *s) {
    if (!add(vm, "\"")) return false;
    for (uint32_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->data[i];
        char buf[8];
        const char *e = NULL;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\t': e = "\\t"; break;
        case '\r': e = "\\r"; break;
        case 0: e = "\\0"; break;
        default:
            if (c < 32 || c == 127) {
                snprintf(buf, sizeof buf, "\\x%02x", c);
                e = buf;
            }
        }
        if (e) {
            if (!add(vm, e)) return false;
        } else if (!kp_buf_add(vm, &vm->scratch, (const char *)&c, 1)) {
            return false;
        }
    }
    return add(vm, "\"");
}

/* The shortest text that reads back as f (print, str and format agree):
 * "0.1", "0.30000000000000004", "2.0" (a point or an exponent always, so
 * the text reads as a Float), positional for decimal exponents -4..14 as
 * C's %g, else "1e+15", "1.5e-07"; "inf", "-inf", "nan".
 * Any decimal of at most 15 significant digits that reads back as a
 * normal f is f rounded to 15 digits (DBL_DIG), so 15 digits with the
 * trailing zeros dropped are the shortest when they read back, else 16 or
 * 17 digits are (subnormals have fewer digits: they search from 1). */
void kp_format_float(double f, char *buf, size_t n) {
    if (isnan(f)) { snprintf(buf, n, "nan"); return; }
    if (isinf(f)) { snprintf(buf, n, f > 0 ? "inf" : "-inf"); return; }
    char e[40];
    int prec = fabs(f) < 2.2250738585072014e-308 ? 1 : 15;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (prec == 17 || strtod(e, NULL) == f) break;
    }
    /* e is [-]d.ddde[+-]xx: the digits without trailing zeros, the exponent */
    char *x = strchr(e, 'e');
    int exp10 = atoi(x + 1);
    int digits = prec;
    for (char *p = x - 1; digits > 1 && *p == '0'; p--) digits--;
    if (exp10 >= -4 && exp10 < 15) {
        int decimals = digits - 1 - exp10;
        snprintf(buf, n, "%.*f", decimals > 0 ? decimals : 0, f);
        if (decimals <= 0) strncat(buf, ".0", n - strlen(buf) - 1);
    } else {
        snprintf(buf, n, "%.*e", digits - 1, f);
    }
}

static bool tostring_rec(KpVM *vm, KpValue v, bool quoted, int depth) {
    char buf[64];
    if (depth > 200) return add(vm, "...");
    switch (v.tag) {
    case KP_T_UNSET: return add(vm, "<unset>");
    case KP_T_UNIT: return add(vm, "()");
    case KP_T_BOOL: return add(vm, v.i ? "true" : "false");
    case KP_T_INT: case KP_T_I8: case KP_T_I16: case KP_T_I32:
    case KP_T_U8: case KP_T_U16: case KP_T_U32:
        snprintf(buf, sizeof buf, "%" PRId64, v.i);
        return add(vm, buf);
    case KP_T_U64:
        snprintf(buf, sizeof buf, "%" PRIu64, (uint64_t)v.i);
        return add(vm, buf);
    case KP_T_FLOAT:
        kp_format_float(v.f, buf, sizeof buf);
        return add(vm, buf);
    case KP_T_MOVED: return add(vm, "<moved>");
    case KP_T_REF:
        if (!kp_ref_ok(v)) return add(vm, "<dead reference>");
        if (v.flags & KP_VF_PLACE) return tostring_rec(vm, *(KpValue *)v.p, quoted, depth);
        if (!add(vm, v.flags & KP_VF_MUT ? "$&" : "&")) return false;
        return tostring_rec(vm, *(KpValue *)v.p, true, depth + 1);
    case KP_T_FUNC: {
        /* <function name (file:line)> for a script function of one
         * overload (a function literal's included), else <function name> */
        KpFunc *f = v.p;
        const KpOverload *ov = f->n == 1 ? f->ovs[0] : NULL;
        if (ov && ov->proto && ov->file) {
            const char *base = strrchr(ov->file, '/');
            char fb[160];
            snprintf(fb, sizeof fb, "<function %.40s (%.60s:%u)>", f->name, base ? base + 1 : ov->file, ov->line);
            return add(vm, fb);
        } else {
            snprintf(buf, sizeof buf, "<function %.40s>", f->name);
        }
        return add(vm, buf);
    }
    case KP_T_TYPE: return add(vm, kp_type_name(v.p));
    case KP_T_SYSTEM: return add(vm, "<system>");
    case KP_T_STR:
        if (quoted) return add_quoted(vm, v.p);
        return kp_buf_add(vm, &vm->scratch, ((KpString *)v.p)->data, ((KpString *)v.p)->len);
    case KP_T_RECORD: {
        KpRecord *r = v.p;
        if (r->type->closure) return tostring_rec(vm, kp_ptr(KP_T_FUNC, r->type->closure->func), quoted, depth);
        if (r->type->host) return add(vm, "<") && add(vm, r->type->name) && add(vm, ">");
        if (!r->type->anon && !add(vm, r->type->name)) return false;
        if (!add(vm, "(")) return false;
        for (uint32_t i = 0; i < r->type->nfields; i++) {
            if (i && !add(vm, ", ")) return false;
            if (!add(vm, ".") || !add(vm, r->type->fnames[i]) || !add(vm, " = ")) return false;
            if (!tostring_rec(vm, r->f[i], true, depth + 1)) return false;
        }
        return add(vm, ")");
    }
    case KP_T_LIST: {
        KpList *l = v.p;
        if (!add(vm, "[")) return false;
        for (uint32_t i = 0; i < l->len; i++) {
            if (i && !add(vm, ", ")) return false;
            if (!tostring_rec(vm, l->items[i], true, depth + 1)) return false;
        }
        return add(vm, "]");
    }
    case KP_T_MAP: {
        KpMap *m = v.p;
        if (!m->count) return add(vm, "(=)");
        if (!add(vm, "(")) return false;
        bool first = true;
        for (uint32_t i = 0; i < m->nentries; i++) {
            if (m->entries[i].key.tag == KP_T_UNSET) continue;
            if (!first && !add(vm, ", ")) return false;
            first = false;
            if (!tostring_rec(vm, m->entries[i].key, true, depth + 1) || !add(vm, " = ") ||
                !tostring_rec(vm, m->entries[i].val, true, depth + 1))
                return false;
        }
        return add(vm, ")");
    }
    case KP_T_BIN: return kp_bin_tostring(vm, v.p);
    default:
        snprintf(buf, sizeof buf, "<%s>", kp_value_type_name(vm, v));
        return add(vm, buf);
    }
}

bool kp_tostring(KpVM *vm, KpValue v, bool quoted) {
    return tostring_rec(vm, v, quoted, 0);
}

const char *kp_tostring_msg(KpVM *vm, KpValue v, bool quoted) {
    kp_buf_reset(&vm->scratch);
    if (!tostring_rec(vm, v, quoted, 0) || !vm->scratch.data) return "(a value: out of memory to show it)";
    return vm->scratch.data;
}

/* --------------------------------------------------------------- types */

const char *kp_type_name(const KpType *t) { return t ? t->name : "Any"; }

const char *kp_a(const char *name) {
    static _Thread_local char bufs[4][160];
    static _Thread_local int next;
    char *b = bufs[next++ & 3];
    bool vowel = name && strchr("AEIOUaeiou", name[0]) && name[0];
    snprintf(b, 160, "%s %s", vowel ? "an" : "a", name ? name : "?");
    return b;
}

const char *kp_value_type_name(KpVM *vm, KpValue v) {
    switch (v.tag) {
    case KP_T_UNSET: return "<unset>";
    case KP_T_MOVED: return "<moved>";
    case KP_T_RECORD: return ((KpRecord *)v.p)->type->name;
    case KP_T_REF: {
        if (!kp_ref_ok(v)) return "<dead reference>";
        KpValue t = *(KpValue *)v.p;
        if (v.flags & KP_VF_PLACE) return kp_value_type_name(vm, t);
        static _Thread_local char buf[128];
        snprintf(buf, sizeof buf, "%s%s", v.flags & KP_VF_MUT ? "$&" : "&",
                 kp_value_type_name(vm, t));
        return buf;
    }
    case KP_T_LIST: {
        KpList *l = v.p;
        if (!l->elem) return "List";
        static _Thread_local char lbuf[2][160];
        static _Thread_local int ln;
        char *b = lbuf[ln++ & 1];
        snprintf(b, 160, "List#(%s)", l->elem->name);
        return b;
    }
    default: break;
    }
    switch (v.tag) {
    case KP_T_UNIT: return "()";
    case KP_T_BOOL: return "Bool";
    case KP_T_INT: return "Int";
    case KP_T_FLOAT: return "Float";
    case KP_T_I8: return "Int8";
    case KP_T_I16: return "Int16";
    case KP_T_I32: return "Int32";
    case KP_T_U8: return "UInt8";
    case KP_T_U16: return "UInt16";
    case KP_T_U32: return "UInt32";
    case KP_T_U64: return "UInt64";
    case KP_T_FUNC: return "Function";
    case KP_T_TYPE: return "Type";
    case KP_T_SYSTEM: {
        static const char *const sys[] = {"System", "System.Memory", "System.Fs", "System.Random", "System.Env"};
        return v.aux < 5 ? sys[v.aux] : "System";
    }
    case KP_T_STR: return "String";
    case KP_T_MAP: return "HashMap";
    case KP_T_HEAP: return "HeapAllocation";
    case KP_T_ALLOCATOR: return kp_alloc_kind_name(((KpAllocObj *)v.p)->kind);
    case KP_T_BIN: return kp_bin_kind_name(((KpBinObj *)v.p)->bkind);
    default: return "?";
    }
}

bool kp_type_matches(KpVM *vm, const KpType *t, KpValue v) {
    if (!t) return true;
    switch (t->kind) {
    case KP_TK_ANY: return v.tag != KP_T_UNSET && v.tag != KP_T_MOVED;
    case KP_TK_SCALAR: return v.tag == t->tag;
    case KP_TK_OPAQUE:
        if (v.tag != t->tag) return false;
        if (t->tag == KP_T_ALLOCATOR) return !t->akind || ((KpAllocObj *)v.p)->kind == t->akind;
        if (t->tag == KP_T_BIN) return !t->akind || ((KpBinObj *)v.p)->bkind == t->akind;
        if (t->tag == KP_T_SYSTEM) return v.aux == (uint32_t)(t->akind);
        return true;
    case KP_TK_TYPE: return v.tag == KP_T_TYPE;
    case KP_TK_FUNC: /* a function, or a function literal's value (a record of its closure type) */
        if (t->closure) return v.tag == KP_T_RECORD && ((KpRecord *)v.p)->type == t;
        return v.tag == KP_T_FUNC || (v.tag == KP_T_RECORD && ((KpRecord *)v.p)->type->closure);
    case KP_TK_RECORD: return v.tag == KP_T_RECORD && ((KpRecord *)v.p)->type == t;
    case KP_TK_LIST: {
        if (v.tag != KP_T_LIST) return false;
        KpList *l = v.p;
        if (!t->elem || l->elem == t->elem) return true;
        for (uint32_t i = 0; i < l->len; i++)
            if (!kp_type_matches(vm, t->elem, l->items[i])) return false;
        l->elem = t->elem; /* checked once; pushes are checked from now on */
        return true;
    }
    case KP_TK_MAP: {
        if (v.tag != KP_T_MAP) return false;
        KpMap *m = v.p;
        if ((!t->key || m->ktype == t->key) && (!t->elem || m->vtype == t->elem)) return true;
        for (uint32_t i = 0; i < m->nentries; i++) {
            if (m->entries[i].key.tag == KP_T_UNSET) continue;
            if (!kp_type_matches(vm, t->key, m->entries[i].key) ||
                !kp_type_matches(vm, t->elem, m->entries[i].val))
                return false;
        }
        m->ktype = t->key;
        m->vtype = t->elem;
        return true;
    }
    case KP_TK_REF:
        if (v.tag != KP_T_REF) return false;
        if (t->refmode == 2 && !(v.flags & KP_VF_MUT)) return false;
        return kp_ref_ok(v) && kp_type_matches(vm, t->elem, *(KpValue *)v.p);
    case KP_TK_ABSTRACT:
        return v.tag != KP_T_UNSET && v.tag != KP_T_MOVED; /* checked by callers */
    }
    return false;
}

static const struct { int64_t lo; int64_t hi; } sized_range[] = {
    {INT8_MIN, INT8_MAX}, {INT16_MIN, INT16_MAX}, {INT32_MIN, INT32_MAX},
    {0, UINT8_MAX}, {0, UINT16_MAX}, {0, UINT32_MAX}, {0, INT64_MAX},
};

bool kp_type_coerce(KpVM *vm, const KpType *t, KpValue *v, const char **why) {
    *why = NULL;
    if (!t) return true;
    /* the common case first: a scalar of exactly the type (a Float32 place
     * still rounds its Float below) */
    if (t->kind == KP_TK_SCALAR && v->tag == t->tag && t->akind != 32) return true;
    if (t->kind == KP_TK_RECORD) return v->tag == KP_T_RECORD && ((KpRecord *)v->p)->type == t;
    if ((t->kind == KP_TK_LIST || t->kind == KP_TK_MAP) && kp_type_matches(vm, t, *v)) return true; /* (checked once) */
    if (t->kind == KP_TK_LIST || t->kind == KP_TK_MAP) {
        /* convert the elements (e.g. Int literals into an Int32 map) */
        if (t->kind == KP_TK_LIST && v->tag == KP_T_LIST && t->elem) {
            KpList *l = v->p;
            for (uint32_t i = 0; i < l->len; i++)
                if (!kp_type_coerce(vm, t->elem, &l->items[i], why)) {
                    static _Thread_local char wbuf[200];
                    snprintf(wbuf, sizeof wbuf, "element %u is %s", i, kp_value_type_name(vm, l->items[i]));
                    *why = wbuf;
                    return false;
                }
            l->elem = t->elem;
            return true;
        }
        if (t->kind == KP_TK_MAP && v->tag == KP_T_MAP) {
            KpMap *m = v->p;
            for (uint32_t i = 0; i < m->nentries; i++) {
                if (m->entries[i].key.tag == KP_T_UNSET) continue;
                if (t->key && !kp_type_coerce(vm, t->key, &m->entries[i].key, why)) return false;
                if (t->elem && !kp_type_coerce(vm, t->elem, &m->entries[i].val, why)) return false;
            }
            m->ktype = t->key;
            m->vtype = t->elem;
            return true;
        }
        return false;
    }
    if (t && t->kind == KP_TK_SCALAR && KP_IS_SIZED_INT(t->tag)) {
        if (v->tag == t->tag) return true;
        if (v->tag == KP_T_INT || (KP_IS_SIZED_INT(v->tag) && v->tag != KP_T_U64)) {
            int r = t->tag - KP_T_I8;
            if (t->tag == KP_T_U64 ? v->i < 0 : (v->i < sized_range[r].lo || v->i > sized_range[r].hi)) {
                *why = "out of range";
                return false;
            }
            v->tag = t->tag;
            return true;
        }
        return false;
    }
    if (t && t->kind == KP_TK_SCALAR && t->tag == KP_T_INT && KP_IS_SIZED_INT(v->tag)) {
        if (v->tag == KP_T_U64 && v->i < 0) { *why = "out of range"; return false; }
        v->tag = KP_T_INT;
        return true;
    }
    if (t && t->kind == KP_TK_SCALAR && t->tag == KP_T_FLOAT && v->tag == KP_T_INT) {
        v->f = (double)v->i;
        v->tag = KP_T_FLOAT;
    }
    /* Float32 (akind 32) stores a Float rounded to single precision */
    if (t && t->kind == KP_TK_SCALAR && t->tag == KP_T_FLOAT && t->akind == 32 && v->tag == KP_T_FLOAT) {
        v->f = (double)(float)v->f;
        return true;
    }
    return kp_type_matches(vm, t, *v);
}
