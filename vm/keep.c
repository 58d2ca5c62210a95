/*
 * keep.c — keep boxes, their owners, and the cycle detector.
 *
 * Design.  `keep x with y, z` ties x's life to y and z.  The compiler puts
 * every variable that is kept in a box from its declaration (KpBox, from
 * the context allocator or the keep's `using A`), so references taken to
 * it before the keep (`inst.field = &x`) already point at the box.  Until
 * the keep runs, the variable holds the box's one count (a KP_T_BOX value,
 * dropped at scope exit like any owned value); `keep` hands that count to
 * the owners — one count per owner — and links the box to each owner
 * object in a side table (owner pointer -> links, newest first; the owner
 * gets KP_OF_KEEPER).  When an owner is deinitialized, its user deinit runs
 * first (it may still use x), then its boxes are released newest first,
 * then its fields and memory.  A box whose count reaches zero deinitializes
 * its value and is freed.  `keep x` with no owner is manual: it ends with
 * `deinit(x)`, and is reported at shutdown otherwise.
 *
 * Cycles.  Boxes can keep each other alive (x's value owns a box whose
 * value owns x's box...).  kp_check_cycles is synchronous trial deletion
 * (Bacon & Rajan, "Concurrent Cycle Collection in Reference Counted
 * Systems", 2001), restricted to keep boxes: a box whose count drops
 * without reaching zero is buffered as a candidate (never one whose value
 * cannot reach other boxes: scalars, strings, allocations); from the
 * candidates, subtract the counts held inside the subgraph they reach;
 * boxes still positive are held from outside (a variable, a manual keep)
 * and, with everything reachable from them, are live; the rest are
 * unreachable cycles.  Every walk uses an explicit stack.  Each is reported
 * as a path through the boxes with the field names and the file:line of
 * every keep in it; with collect, their values are deinitialized (in the
 * order the boxes were made) and the boxes freed.
 */
#include <stdio.h>
#include <string.h>

#include "vm.h"

typedef struct KpKeepLink {
    KpObj *owner;
    KpBox *box;
    struct KpKeepLink *next; /* older links of the same owner */
} KpKeepLink;

/* ------------------------------------------------------------ side table */

static uint32_t hash_ptr(const void *p) { return (uint32_t)(((uintptr_t)p >> 4) * 2654435761u); }

/* Open addressing with linear probing; a released owner leaves a
 * tombstone (1) so that the probe sequences through it stay intact: a
 * lookup walks past tombstones and stops only at an empty slot. */
#define TOMB ((KpKeepLink *)1)

/* The slot holding o's links, or NULL when o keeps nothing. */
static KpKeepLink **find_slot(KpVM *vm, KpObj *o) {
    uint32_t mask = vm->keep_cap - 1, i = hash_ptr(o) & mask;
    for (uint32_t n = 0; n < vm->keep_cap && vm->keep_tab[i]; n++, i = (i + 1) & mask)
        if (vm->keep_tab[i] != TOMB && vm->keep_tab[i]->owner == o) return &vm->keep_tab[i];
    return NULL;
}

/* The slot for o's links: its own, else the first tombstone or empty slot
 * on its probe sequence (the table always has an empty slot). */
static KpKeepLink **insert_slot(KpVM *vm, KpObj *o) {
    KpKeepLink **s = find_slot(vm, o);
    if (s) return s;
    uint32_t mask = vm->keep_cap - 1, i = hash_ptr(o) & mask;
    while (vm->keep_tab[i] && vm->keep_tab[i] != TOMB) i = (i + 1) & mask;
    return &vm->keep_tab[i];
}

/* Rebuilds the table without tombstones, at a size where the live owners
 * fill at most a quarter of it.  keep_count counts the slots in use (live
 * owners and tombstones): the table is rebuilt when they pass half. */
static bool table_grow(KpVM *vm) {
    uint32_t live = 0;
    for (uint32_t i = 0; i < vm->keep_cap; i++)
        if (vm->keep_tab[i] && vm->keep_tab[i] != TOMB) live++;
    uint32_t ncap = 64;
    while ((uint64_t)(live + 1) * 4 > ncap) ncap *= 2;
    KpKeepLink **n = kp_alloc(vm->rt, sizeof(void *) * ncap, 8, NULL);
    if (!n) return false;
    memset(n, 0, sizeof(void *) * ncap);
    KpKeepLink **old = vm->keep_tab;
    uint32_t ocap = vm->keep_cap;
    vm->keep_tab = n;
    vm->keep_cap = ncap;
    vm->keep_count = 0;
    for (uint32_t i = 0; i < ocap; i++) {
        KpKeepLink *l = old[i];
        if (!l || l == TOMB) continue;
        *insert_slot(vm, l->owner) = l;
        vm->keep_count++;
    }
    if (old) kp_free(vm->rt, old, sizeof(void *) * ocap, 8, NULL);
    return true;
}

static KpKeepLink *links_of(KpVM *vm, KpObj *o) {
    if (!vm->keep_cap || !(o->flags & KP_OF_KEEPER)) return NULL;
    KpKeepLink **s = find_slot(vm, o);
    return s ? *s : NULL;
}

/* ------------------------------------------------------------ boxes */

/* keep's tables are the VM's, shared by parallel workers: a worker
 * keeps nothing (docs/language.md §15). */
static bool refuse_in_worker(KpVM *vm) {
    return kp_vm_error(vm, "keep is not available in a parallel worker: a worker shares its data only as & borrows");
}

bool kp_box_new(KpVM *vm, KpAllocator *a, KpValue v, const char *name, KpValue *out) {
    if (vm->par) {
        kp_drop(vm, v);
        return refuse_in_worker(vm);
    }
    KpBox *b = kp_obj_new(vm, a, KP_T_BOX, sizeof(KpBox));
    if (!b) {
        kp_drop(vm, v);
        return false;
    }
    b->rc = 1;
    b->v = v;
    b->name = name;
    b->next_all = vm->boxes;
    if (vm->boxes) vm->boxes->prev_all = b;
    vm->boxes = b;
    *out = kp_ptr(KP_T_BOX, b);
    return true;
}

static void box_free(KpVM *vm, KpBox *b) {
    kp_block_release(&b->h, b->name ? b->name : "kept value");
    if (b->prev_all) b->prev_all->next_all = b->next_all;
    else vm->boxes = b->next_all;
    if (b->next_all) b->next_all->prev_all = b->prev_all;
    kp_free(b->h.alloc, b, sizeof(KpBox), 16, NULL);
}

enum { DYING = 3 };

/* Can a box's value reach other boxes?  Every record, list and map can:
 * it may itself be an owner (`keep w with v`), whatever its fields hold;
 * scalars, strings and allocations cannot, and are never buffered. */
static bool may_cycle(KpValue v) {
    return v.tag == KP_T_RECORD || v.tag == KP_T_LIST || v.tag == KP_T_MAP;
}

bool kp_box_release(KpVM *vm, KpBox *b) { return kp_drop(vm, kp_ptr(KP_T_BOX, b)); }

/* One count of b goes (a step of kp_drop, vm/object.c): at zero its value
 * is scheduled for dropping above a marker that frees b afterwards, so a
 * chain of a million boxes is released on kp_drop's work stack, never by
 * C recursion. */
bool kp_box_drop_count(KpVM *vm, KpBox *b) {
    if (b->color == DYING) return true; /* reached again from its own value */
    if (--b->rc > 0) {
        if (may_cycle(b->v)) b->buffered = 1; /* a candidate root for the cycle detector */
        return true;
    }
    b->color = DYING;
    KpValue v = b->v;
    b->v = kp_unset();
    KpValue mark = {.tag = KP_DROP_BOX_FREE};
    mark.p = b;
    if (kp_drop_push(vm, mark) && (!KP_NEEDS_DROP(v) || kp_drop_push(vm, v))) return true;
    /* no memory for the work stack: the marker may be pushed without its
     * value, which is then dropped here (nested) before the marker runs */
    bool ok = kp_drop(vm, v);
    if (vm->dstack.len && vm->dstack.items[vm->dstack.len - 1].tag == KP_DROP_BOX_FREE &&
        vm->dstack.items[vm->dstack.len - 1].p == b)
        return ok; /* the marker frees b */
    box_free(vm, b);
    return ok;
}

void kp_box_free(KpVM *vm, KpBox *b) { box_free(vm, b); }

static bool is_owner_kind(KpValue v) { return v.tag == KP_T_RECORD || v.tag == KP_T_LIST || v.tag == KP_T_MAP; }

bool kp_keep(KpVM *vm, KpBox *b, KpValue *owners, int n, const char *file, uint32_t line) {
    if (vm->par) return refuse_in_worker(vm);
    b->file = file;
    b->line = line;
    if (n == 0) {
        b->manual = 1; /* the variable's count now belongs to the manual keep */
        return true;
    }
    for (int i = 0; i < n; i++) {
        KpValue o = kp_deref(owners[i]);
        if (!is_owner_kind(o)) {
            if (o.tag == KP_T_MOVED || o.tag == KP_T_UNSET)
                return kp_vm_error(vm, "keep %s with a value that was moved or never set", b->name ? b->name : "_");
            return kp_vm_error(vm, "keep %s with %s: an owner must be a record, a list or a map", b->name ? b->name : "_",
                               kp_a(kp_value_type_name(vm, o)));
        }
        if (o.p == (b->v.tag >= KP_T_RECORD ? b->v.p : NULL))
            return kp_vm_error(vm, "keep %s with itself", b->name ? b->name : "_");
    }
    for (int i = 0; i < n; i++) {
        KpObj *o = kp_deref(owners[i]).p;
        if ((vm->keep_count + 1) * 2 > vm->keep_cap && !table_grow(vm)) return kp_vm_error(vm, "out of memory (keep)");
        KpKeepLink *l = kp_alloc(vm->rt, sizeof *l, 16, NULL);
        if (!l) return kp_vm_error(vm, "out of memory (keep)");
        KpKeepLink **s = insert_slot(vm, o);
        KpKeepLink *prev = (*s == TOMB) ? NULL : *s;
        if (!*s) vm->keep_count++; /* an empty slot taken (a tombstone was counted) */
        l->owner = o;
        l->box = b;
        l->next = prev;
        *s = l;
        o->flags |= KP_OF_KEEPER;
        b->rc++;
    }
    b->rc--; /* the variable's own count went to the owners */
    if (may_cycle(b->v)) b->buffered = 1;
    return true;
}

bool kp_keep_release_owner(KpVM *vm, KpObj *o) {
    if (!(o->flags & KP_OF_KEEPER) || !vm->keep_cap) return true;
    o->flags &= (uint8_t)~KP_OF_KEEPER;
    KpKeepLink **s = find_slot(vm, o);
    if (!s) return true;
    KpKeepLink *l = *s;
    *s = TOMB;
    /* the links are newest first; they go on the work stack oldest first,
     * so that kp_drop releases them newest first (reverse keep order) */
    KpKeepLink *rev = NULL;
    while (l) {
        KpKeepLink *next = l->next;
        l->next = rev;
        rev = l;
        l = next;
    }
    bool ok = true;
    for (l = rev; l;) {
        KpKeepLink *next = l->next;
        KpBox *b = l->box;
        if (!kp_drop_push(vm, kp_ptr(KP_T_BOX, b))) {
            /* no memory for the work stack: this box and the newer ones
             * are due before those pushed; they are released now, nested,
             * newest first */
            KpKeepLink *newest = NULL;
            while (l) {
                next = l->next;
                l->next = newest;
                newest = l;
                l = next;
            }
            while (newest) {
                next = newest->next;
                b = newest->box;
                kp_free(vm->rt, newest, sizeof *newest, 16, NULL);
                if (!kp_box_release(vm, b)) ok = false;
                newest = next;
            }
            break;
        }
        kp_free(vm->rt, l, sizeof *l, 16, NULL);
        l = next;
    }
    return ok;
}

bool kp_keep_end_manual(KpVM *vm, KpBox *b) {
    if (!b->manual) return kp_vm_error(vm, "'%s' is kept by its owners; it is deinitialized when they are", b->name ? b->name : "_");
    b->manual = 0;
    return kp_box_release(vm, b);
}

/* ------------------------------------------------------------ cycles */

typedef struct Walk {
    KpValue *items;
    size_t len, cap;
    bool failed; /* out of memory: the walk missed values */
} Walk;

static bool wpush(KpVM *vm, Walk *w, KpValue v) {
    if (w->len == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 64;
        KpValue *n = kp_realloc(vm->rt, w->items, sizeof(KpValue) * w->cap, sizeof(KpValue) * ncap, 16, NULL);
        if (!n) {
            w->failed = true;
            return false;
        }
        w->items = n;
        w->cap = ncap;
    }
    w->items[w->len++] = v;
    return true;
}

/* Calls fn(child box) for every box kept by an object that b's value owns;
 * false when out of memory (some children were not visited). */
static bool for_children(KpVM *vm, KpBox *b, void (*fn)(KpVM *, KpBox *, KpBox *, void *), void *ud) {
    Walk w = {0};
    wpush(vm, &w, b->v);
    while (w.len) {
        KpValue v = w.items[--w.len];
        if (v.tag < KP_T_RECORD || v.tag > KP_T_MAP) continue;
        KpObj *o = v.p;
        for (KpKeepLink *l = links_of(vm, o); l; l = l->next) fn(vm, b, l->box, ud);
        if (v.tag == KP_T_RECORD) {
            KpRecord *r = v.p;
            for (uint32_t i = 0; i < r->type->nfields; i++) wpush(vm, &w, r->f[i]);
        } else if (v.tag == KP_T_LIST) {
            KpList *l = v.p;
            for (uint32_t i = 0; i < l->len; i++) wpush(vm, &w, l->items[i]);
        } else {
            KpMap *m = v.p;
            for (uint32_t i = 0; i < m->nentries; i++) wpush(vm, &w, m->entries[i].val);
        }
    }
    if (w.items) kp_free(vm->rt, w.items, sizeof(KpValue) * w.cap, 16, NULL);
    return !w.failed;
}

enum { WHITE = 0, BLACK = 1 }; /* 2: reported, DYING: being released */

/* Finds a path of white boxes from `from` back to `start` (DFS). */
typedef struct PathCtx {
    KpBox *start;
    KpBox *path[64];
    int len;
    bool found;
    KpBox *next;
} PathCtx;

static void pick_white(KpVM *vm, KpBox *parent, KpBox *child, void *ud) {
    (void)vm; (void)parent;
    PathCtx *p = ud;
    if (child->color == WHITE && !p->next) p->next = child;
    if (child == p->start) p->found = true;
}

/* How box `from`'s value holds the owner of box `to`: "" when the value
 * itself keeps it, ".field" (or ".a.b") when an owner inside it does. */
static bool find_owner_path(KpVM *vm, KpValue v, KpBox *to, char *buf, size_t n, int depth) {
    if (depth > 8 || v.tag < KP_T_RECORD || v.tag > KP_T_MAP) return false;
    for (KpKeepLink *l = links_of(vm, v.p); l; l = l->next)
        if (l->box == to) return true;
    if (v.tag != KP_T_RECORD) return false;
    KpRecord *r = v.p;
    size_t len = strlen(buf);
    for (uint32_t i = 0; i < r->type->nfields; i++) {
        snprintf(buf + len, n - len, ".%s", r->type->fnames[i]);
        if (find_owner_path(vm, r->f[i], to, buf, n, depth + 1)) return true;
        buf[len] = 0;
    }
    return false;
}

static void edge_label(KpVM *vm, KpBox *from, KpBox *to, char *buf, size_t n) {
    buf[0] = 0;
    if (!find_owner_path(vm, from->v, to, buf, n, 0)) buf[0] = 0;
}

static void report_cycle(KpVM *vm, KpBox *start) {
    PathCtx p = {start, {start}, 1, false, NULL};
    KpBox *cur = start;
    while (p.len < 64) {
        p.found = false;
        p.next = NULL;
        for_children(vm, cur, pick_white, &p);
        if (p.found || !p.next) break;
        bool seen = false;
        for (int i = 0; i < p.len; i++) if (p.path[i] == p.next) seen = true;
        if (seen) break;
        p.path[p.len++] = p.next;
        cur = p.next;
    }
    KpBuf b = {0};
    kp_buf_printf(vm, &b, "cycle: ");
    for (int i = 0; i < p.len; i++) {
        KpBox *to = i + 1 < p.len ? p.path[i + 1] : start;
        char label[160];
        edge_label(vm, p.path[i], to, label, sizeof label);
        kp_buf_printf(vm, &b, "%s%s (kept at %s:%u) -> ", p.path[i]->name ? p.path[i]->name : "_", label,
                      p.path[i]->file ? p.path[i]->file : "?", p.path[i]->line);
    }
    if (!p.found && p.len == 64) kp_buf_printf(vm, &b, "... -> "); /* a longer cycle: its first 64 boxes */
    kp_buf_printf(vm, &b, "%s\n", start->name ? start->name : "_");
    if (!kp_buf_printf(vm, &b, "    hint: tie these values to one common owner, or allocate them in an arena\n")) {
        static const char msg[] = "cycle: (out of memory while describing it)\n";
        vm->write_err(vm->write_ud, msg, sizeof msg - 1);
    } else {
        vm->write_err(vm->write_ud, b.data, b.len);
    }
    kp_buf_free(vm, &b);
}

/* The boxes reached from the candidates: collected with an explicit
 * stack (a chain of a million boxes must not overflow the C stack). */
typedef struct BoxSet {
    KpBox **items;
    size_t len, cap;
    bool failed; /* out of memory: a box was left out */
} BoxSet;

static bool bpush(KpVM *vm, BoxSet *b, KpBox *x) {
    if (b->len == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        KpBox **n = kp_realloc(vm->rt, b->items, sizeof(void *) * b->cap, sizeof(void *) * ncap, 8, NULL);
        if (!n) {
            b->failed = true;
            return false;
        }
        b->items = n;
        b->cap = ncap;
    }
    b->items[b->len++] = x;
    return true;
}

enum { UNSEEN = 4, GRAY = 5 };

static void reach(KpVM *vm, KpBox *parent, KpBox *child, void *ud) {
    (void)parent;
    BoxSet *todo = ud;
    if (child->color != GRAY && child->color != DYING) {
        child->color = GRAY;
        child->trial = child->rc;
        bpush(vm, todo, child);
    }
}
static void dec_trial(KpVM *vm, KpBox *parent, KpBox *child, void *ud) {
    (void)vm; (void)parent; (void)ud;
    child->trial--;
}
static void blacken(KpVM *vm, KpBox *parent, KpBox *child, void *ud) {
    (void)parent;
    if (child->color == WHITE) {
        child->color = BLACK;
        bpush(vm, ud, child);
    }
}

static void mark_reported(KpVM *vm, KpBox *parent, KpBox *child, void *ud) {
    (void)parent;
    if (child->color == WHITE) {
        child->color = 2;
        bpush(vm, ud, child);
    }
}

/* Trial deletion (Bacon & Rajan 2001, the synchronous algorithm) over the
 * candidate boxes — those whose count dropped without reaching zero and
 * whose value can hold owners at all: gray the subgraph they reach with
 * trial counts = real counts; subtract every count held by a box in it;
 * a box still positive is held from outside, so it and all it reaches are
 * black (alive); the rest are white: unreachable cycles.
 *
 * Out of memory for its work lists, the check cannot tell: it leaves every
 * box alive and a candidate still, and returns -1. */
int kp_check_cycles(KpVM *vm, bool collect) {
    if (vm->par) return 0; /* (no box can be made in a worker) */
    BoxSet set = {0}, todo = {0};
    bool ok = true;
    for (KpBox *b = vm->boxes; b; b = b->next_all) {
        if (b->buffered && b->color != DYING) {
            b->color = GRAY;
            b->trial = b->rc;
            ok = bpush(vm, &set, b) && ok;
        } else if (b->color != DYING) {
            b->color = UNSEEN;
        }
    }
    /* 1. gray: everything the candidates reach */
    for (size_t i = 0; ok && i < set.len; i++) ok = for_children(vm, set.items[i], reach, &set) && !set.failed;
    /* 2. subtract the counts held inside the gray subgraph */
    for (size_t i = 0; ok && i < set.len; i++) ok = for_children(vm, set.items[i], dec_trial, NULL);
    /* 3. held from outside: black, with all they reach */
    for (size_t i = 0; ok && i < set.len; i++) set.items[i]->color = WHITE;
    for (size_t i = 0; ok && i < set.len; i++)
        if (set.items[i]->trial > 0 && set.items[i]->color == WHITE) {
            set.items[i]->color = BLACK;
            ok = bpush(vm, &todo, set.items[i]);
        }
    while (ok && todo.len) ok = for_children(vm, todo.items[--todo.len], blacken, &todo) && !todo.failed;
    int found = 0;
    for (size_t i = 0; i < set.len; i++) if (set.items[i]->color == WHITE) found++;
    for (KpBox *b = vm->boxes; b; b = b->next_all) {
        if (!ok && b->color != DYING) b->color = BLACK; /* as if nothing was looked at */
        else if (ok) b->buffered = 0;
        if (b->color == UNSEEN || b->color == BLACK) b->color = BLACK;
    }
    if (set.items) kp_free(vm->rt, set.items, sizeof(void *) * set.cap, 8, NULL);
    if (todo.items) kp_free(vm->rt, todo.items, sizeof(void *) * todo.cap, 8, NULL);
    if (!ok) return -1;
    if (!found) return 0;
    if (!collect) /* left alive: candidates again for the next check */
        for (KpBox *b = vm->boxes; b; b = b->next_all) if (b->color == WHITE) b->buffered = 1;
    /* report each cycle once: a white box not on an already reported path */
    for (KpBox *b = vm->boxes; b; b = b->next_all) {
        if (b->color != WHITE) continue;
        report_cycle(vm, b);
        /* everything reachable from it is part of what was reported */
        b->color = 2;
        BoxSet seen = {0};
        bpush(vm, &seen, b);
        while (seen.len) for_children(vm, seen.items[--seen.len], mark_reported, &seen);
        if (seen.items) kp_free(vm->rt, seen.items, sizeof(void *) * seen.cap, 8, NULL);
    }
    if (collect) {
        /* pin every cyclic box, deinitialize their values (oldest box
         * first), then free the boxes */
        KpBox *last = NULL;
        for (KpBox *b = vm->boxes; b; b = b->next_all) {
            if (b->color == 2) b->color = DYING;
            last = b;
        }
        /* first every user deinit of the cycle's values, while all of them
         * are intact (each may look at its peers), then take them apart */
        for (KpBox *b = last; b; b = b->prev_all) {
            if (b->color != DYING || b->v.tag != KP_T_RECORD) continue;
            KpRecord *r = b->v.p;
            if (!r->type->user_deinit || (r->h.flags & KP_OF_DEINITED)) continue;
            KpValue slot = b->v;
            kp_vm_call_deinit(vm, r->type->user_deinit, &slot);
            r->h.flags |= KP_OF_DEINITED;
        }
        for (KpBox *b = last; b; b = b->prev_all) {
            if (b->color != DYING) continue;
            KpValue v = b->v;
            b->v = kp_unset();
            kp_drop(vm, v);
        }
        for (KpBox *b = vm->boxes, *next; b; b = next) {
            next = b->next_all;
            if (b->color == DYING) box_free(vm, b);
        }
    }
    return found;
}

bool kp_keep_report(KpVM *vm) {
    for (KpBox *b = vm->boxes; b; b = b->next_all) {
        if (!b->manual) continue;
        char buf[512];
        snprintf(buf, sizeof buf, "leak: '%s' was kept at %s:%u (keep %s) and never ended with deinit(%s)\n",
                 b->name ? b->name : "_", b->file ? b->file : "?", b->line, b->name ? b->name : "_",
                 b->name ? b->name : "_");
        vm->write_err(vm->write_ud, buf, strlen(buf));
    }
    if (vm->boxes && kp_check_cycles(vm, vm->collect_cycles) < 0) {
        static const char msg[] = "error: out of memory: the check for unreachable keep cycles could not run\n";
        vm->write_err(vm->write_ud, msg, sizeof msg - 1);
        kp_vm_error(vm, "out of memory: the check for unreachable keep cycles could not run");
        return false;
    }
    return true;
}

void kp_keep_shutdown(KpVM *vm) {
    /* the VM is going away: every box left is released (its value
     * deinitialized), after the reports of kp_keep_report */
    while (vm->boxes) {
        KpBox *b = vm->boxes;
        b->manual = 0;
        b->rc = 1;
        b->color = WHITE;
        kp_box_release(vm, b);
    }
    if (vm->keep_tab) kp_free(vm->rt, vm->keep_tab, sizeof(void *) * vm->keep_cap, 8, NULL);
    vm->keep_tab = NULL;
    vm->keep_cap = vm->keep_count = 0;
}
