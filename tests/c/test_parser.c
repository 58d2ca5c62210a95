/*
 * test_parser.c — lexer and parser tests: the seed's snippets and the
 * brief's syntax parse cleanly, ~40 constructs build the expected AST
 * (compared as one-line S-expressions, see kp_ast_sexpr), syntax errors
 * are reported and recovered from, and hostile input (deep nesting, huge
 * literals, random bytes, NUL bytes, bad UTF-8) gives clean errors.
 * Every test ends with a leak check: the arena is released and the
 * backing allocator's live bytes are back to zero.
 */
#include <stdio.h>

#include "check.h"
#include <stdlib.h>
#include <string.h>

#include "lexer/lexer.h"
#include "parser/ast.h"


/* ------------------------------------------------------------ harness */

typedef struct Parsed {
    KpAllocator direct;
    KpArena arena;
    KpAllocator view;
    KpDiags diags;
    KpSource src;
    KpNode *root;
} Parsed;

static void parse_n(Parsed *p, const char *text, size_t len) {
    kp_direct_init(&p->direct);
    kp_arena_init(&p->arena, &p->direct, &p->view);
    kp_diags_init(&p->diags, &p->arena);
    p->src = (KpSource){"<test>", text, len};
    p->root = kp_parse(&p->src, &p->arena, &p->diags);
}

static void parse(Parsed *p, const char *text) { parse_n(p, text, strlen(text)); }

/* Releases everything and checks that nothing leaked. */
static void finish(Parsed *p, int line) {
    kp_arena_deinit(&p->arena);
    if (p->direct.stats.live_bytes != 0) {
        failed++;
        fprintf(stderr, "%s:%d: leak: %lld bytes live\n", __FILE__, line,
                (long long)p->direct.stats.live_bytes);
    } else {
        passed++;
    }
}
#define FINISH(p) finish(p, __LINE__)

static void print_diags(const Parsed *p) {
    for (int i = 0; i < p->diags.count && i < 100; i++)
        fprintf(stderr, "    %u:%u: %s\n", p->diags.items[i].line,
                p->diags.items[i].col, p->diags.items[i].msg);
}

static bool has_diag(const Parsed *p, const char *needle) {
    for (int i = 0; i < p->diags.count && i < 100; i++)
        if (strstr(p->diags.items[i].msg, needle)) return true;
    return false;
}

/* Parses `text`, expects no error and the S-expression `want` for the
 * whole program (without the outer "(block ...)"). */
static void shape_at(const char *text, const char *want, int line) {
    Parsed p;
    parse(&p, text);
    static char got[1 << 16];
    kp_ast_sexpr(p.root, got, sizeof got);
    char full[4096];
    snprintf(full, sizeof full, *want ? "(block %s)" : "(block)", want);
    if (p.diags.count != 0) {
        failed++;
        fprintf(stderr, "%s:%d: %d unexpected errors in: %s\n", __FILE__, line,
                p.diags.count, text);
        print_diags(&p);
    } else if (strcmp(got, full) != 0) {
        failed++;
        fprintf(stderr, "%s:%d: for %s\n    want %s\n    got  %s\n", __FILE__,
                line, text, full, got);
    } else {
        passed++;
    }
    finish(&p, line);
}
#define SHAPE(text, want) shape_at(text, want, __LINE__)

/* Parses `text`, expects exactly `n` errors (n < 0: at least one), one of
 * them containing `needle` (NULL: any). */
static void errors_at(const char *text, size_t len, int n, const char *needle,
                      int line) {
    Parsed p;
    parse_n(&p, text, len);
    bool ok = p.root != NULL && (n < 0 ? p.diags.count > 0 : p.diags.count == n) &&
              (!needle || has_diag(&p, needle));
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "%s:%d: want %d error(s) with \"%s\", got %d for: %.60s\n",
                __FILE__, line, n, needle ? needle : "", p.diags.count, text);
        print_diags(&p);
    }
    finish(&p, line);
}
#define ERRORS(text, n, needle) errors_at(text, strlen(text), n, needle, __LINE__)

static void clean_at(const char *text, int line) {
    Parsed p;
    parse(&p, text);
    if (p.diags.count == 0 && p.root) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "%s:%d: %d unexpected errors in:\n%s\n", __FILE__, line,
                p.diags.count, text);
        print_diags(&p);
    }
    finish(&p, line);
}
#define CLEAN(text) clean_at(text, __LINE__)

/* -------------------------------------------------------- seed, brief */

/* Every ``` block of seeds/002, verbatim. */
static const char *const seed_snippets[] = {
    "Allocator : Abstract = (\n"
    "\talloc (_, size: Int) -> HeapAllocation\n"
    "\tdealloc (_, ha: HeapAllocation) -> ()\n"
    ")\n",

    "init (.memory: &System.Memory) -> (.allocator: PageAllocator) := { ... }\n",

    "Allocation : Type = (\n"
    "\t.data      : &Byte\n"
    "\t.size      : Int  -- In bytes\n"
    "\t.allocator : &Allocator\n"
    ")\n",

    "init (\n"
    "    size     : Int,\n"
    "    allocator: Allocator\n"
    ") -> (.ha: HeapAllocation) := {\n"
    "\tha = HeapAllocation (\n"
    "\t\t.data      = allocator|allocate(size)\n"
    "\t\t.size      = size\n"
    "\t\t.allocator = allocator\n"
    "\t)\n"
    "}\n",

    "my_buf : HeapAllocation = init(1024, my_allocator)\n",

    "Hashmap#(.from: Type, .to: Type) : Type = (\n"
    "\t.data      : Allocation\n"
    ")\n"
    "\n"
    "\n"
    "init (.allocator: Allocator, content: MapLiteral) -> (.hm: HashMap#(f, t)) :=  {\n"
    "\thm : Hashmap#(f, t)\n"
    "\thm.data = allocator|alloc(1024)\n"
    "\t...\n"
    "}\n"
    "\n"
    "-- When adding stuff check capacity and reallocate if necessary.\n"
    "\n"
    "deinit (.hm:$&Hashmap&) -> () := {\n"
    "\thm.data|dealloc(_)\n"
    "}\n",

    "my_map : HashMap#(String,Int32) = init (my_allocator, (\"a\"=1, \"b\"=2))\n",

    "my_map := (\"a\"=1, \"b\"=2)\n",

    "my_obj : Obj = ...\n"
    "\n"
    "-- El compilador siempre pone automáticamente\n"
    "#defer my_obj|deinit(_)\n",

    "deinit (.s: AnyStruct) -> () := {\n"
    "\t-- Pensar en como hacer introspección. Qué tipo es un struct?\n"
    "\tfor field in s | #get_fields {\n"
    "\t\tfield|deinit\n"
    "\t}\n"
    "}\n",

    "my_obj : Obj = ...\n"
    "\n"
    "my_ref = &my_obj\n"
    "#keep my_obj with my_ref using my_allocator\n",

    "{\n"
    "\tMyType : Type = (\n"
    "\t\t.field : &Int\n"
    "\t)\n"
    "\tmy_instance : MyType\n"
    "\n"
    "\tmy_int := 5\n"
    "\tmy_instance.field = &my_int\n"
    "\t#keep my_int with my_instance\n"
    "\n"
    "\treturn my_instance\n"
    "\t-- Se puede devolver la variable, porque el field se ha copiado al heap.\n"
    "}\n",

    "{\n"
    "\tmy_instance1 : MyType\n"
    "\tmy_instance2 : MyType\n"
    "\t\n"
    "\tmy_int := 5\n"
    "\n"
    "\tmy_instance1.field = &my_int\n"
    "\tmy_instance2.field = &my_int\n"
    "\tkeep my_int with my_instance1, my_instance2\n"
    "}\n",

    "body :=\n"
    "      SketchBuilder|init()\n"
    "    | trapezoid(&_, 4, 3, 90)\n"
    "    | fillet(&_, 0.25)\n"
    "    | extrude(&_, 0.1)\n",

    "result :=\n"
    "      load_png(\"image.png\")\n"
    "    | keep _ with result\n"
    "    | parallel_process_that_only_reads(&_)\n"
    "    | parallel_process_that_writes(~&_)\n",
};

static void test_seed_snippets_parse(void) {
    for (size_t i = 0; i < sizeof seed_snippets / sizeof seed_snippets[0]; i++)
        CLEAN(seed_snippets[i]);
}

/* The brief's "syntax by example" block, with each `…` left empty. */
static const char brief_example[] =
    "-- a line comment\n"
    "x := 42                          -- declare, type inferred\n"
    "name : String = \"Ada\"            -- declare with a type, checked\n"
    "x = x + 1                        -- assign\n"
    "print(\"x is\", x)                 -- args printed space-separated, newline\n"
    "\n"
    "Point : Type = (\n"
    "    .x : Int\n"
    "    .y : Int = 0                 -- default value\n"
    ")\n"
    "p := Point(.x = 1, .y = 2)\n"
    "p.x = 3\n"
    "\n"
    "add (a: Int, b: Int) -> Int := { return a + b }\n"
    "divmod (a: Int, b: Int) -> (.q: Int, .r: Int) := {\n"
    "    q = a / b                    -- named outputs are locals, returned\n"
    "    r = a % b                    -- together as a record (.q, .r)\n"
    "}\n"
    "deinit (.p: $&Point) -> () := { print(\"bye\", p.x) }\n"
    "\n"
    "if x > 3 and not done {  } else if x == 3 {  } else {  }\n"
    "{ tmp := 1 }                     -- a bare block is a scope\n"
    "while x > 0 { x = x - 1 }\n"
    "for i in 0..10 {  }             -- end exclusive; also lists, maps, #get_fields\n"
    "total := xs | sum(_)             -- pipe: the value replaces `_`\n"
    "buf := arena | alloc(1024)       -- no `_`: the value becomes the first argument\n"
    "h : Holder                       -- no value: the type's default; fields\n"
    "                                 -- without a default are unset until assigned\n";

static void test_brief_example_parses(void) {
    CLEAN(brief_example);
    CLEAN("Pair#(.a: Type, .b: Type) : Type = (\n .first : a\n .second : b\n)\n"
          "Allocator : Abstract = ( alloc (_, size: Int) -> HeapAllocation )\n"
          "b : HeapAllocation = init(1024, &a)\n"
          "HeapAllocation | init(1024, &a)\n"
          "m := (\"a\" = 1, \"b\" = 2)\n"
          "xs := [1, 2, 3]\n"
          "c := xs[i] + m[\"k\"] + buf[0]\n");
}

/* -------------------------------------------------------------- shapes */

static void test_declarations(void) {
    SHAPE("x := 42", "(decl x - 42)");
    SHAPE("name : String = \"Ada\"", "(decl name String \"Ada\")");
    SHAPE("h : Holder", "(decl h Holder -)");
    SHAPE("x : List#(Int) = []", "(decl x (generic List Int) (list))");
    SHAPE("my_map : HashMap#(String,Int32) = init (my_allocator, (\"a\"=1, \"b\"=2))",
          "(decl my_map (generic HashMap String Int32) (call init my_allocator "
          "(map (pair \"a\" 1) (pair \"b\" 2))))");
    SHAPE("a : System.Memory", "(decl a (. System Memory) -)");
    SHAPE("r : $&Point = p", "(decl r ($&T Point) p)");
    SHAPE("my_obj : Obj = ...", "(decl my_obj Obj ...)");
}

static void test_assignments(void) {
    SHAPE("x = x + 1", "(= x (+ x 1))");
    SHAPE("p.x = 3", "(= (. p x) 3)");
    SHAPE("xs[i] = 3", "(= (index xs i) 3)");
    SHAPE("my_instance.field = &my_int", "(= (. my_instance field) (&x my_int))");
    SHAPE("n += 1; n -= 2; n *= 3; n /= 4; n %= 5",
          "(+= n 1) (-= n 2) (*= n 3) (/= n 4) (%= n 5)");
}

static void test_types(void) {
    SHAPE("Point : Type = (\n    .x : Int\n    .y : Int = 0\n)",
          "(type Point (fielddecl x Int -) (fielddecl y Int 0))");
    SHAPE("P : Type = (.x : Int, .y : Int,)",
          "(type P (fielddecl x Int -) (fielddecl y Int -))");
    SHAPE("One : Type = ( .x : Int )", "(type One (fielddecl x Int -))");
    SHAPE("Empty : Type = ()", "(type Empty)");
    SHAPE("Pair#(.a: Type, .b: Type) : Type = (.first: a, .second: b)",
          "(type Pair ((param .a Type -) (param .b Type -)) "
          "(fielddecl first a -) (fielddecl second b -))");
    SHAPE("Allocator : Abstract = (\n\talloc (_, size: Int) -> HeapAllocation\n"
          "\tdealloc (_, ha: HeapAllocation) -> ()\n)",
          "(abstract Allocator (func alloc ((param _ - -) (param size Int -)) "
          "HeapAllocation -) (func dealloc ((param _ - -) (param ha HeapAllocation -)) () -))");
    SHAPE("x : List#(List#(Int)) = []", "(decl x (generic List (generic List Int)) (list))");
}

static void test_functions(void) {
    SHAPE("add (a: Int, b: Int) -> Int := { return a + b }",
          "(func add ((param a Int -) (param b Int -)) Int (block (return (+ a b))))");
    SHAPE("divmod (a: Int, b: Int) -> (.q: Int, .r: Int) := {\n q = a / b\n r = a % b\n}",
          "(func divmod ((param a Int -) (param b Int -)) (outputs (param .q Int -) "
          "(param .r Int -)) (block (= q (/ a b)) (= r (% a b))))");
    SHAPE("deinit (.p: $&Point) -> () := { print(\"bye\", p.x) }",
          "(func deinit ((param .p ($&T Point) -)) () (block (expr (call print \"bye\" (. p x)))))");
    SHAPE("main () := { }", "(func main () - (block))");
    SHAPE("f (_, b, .n: Int = 3, .m = 4) := {}",
          "(func f ((param _ - -) (param b - -) (param .n Int 3) (param .m - 4)) - (block))");
    SHAPE("deinit (.hm:$&Hashmap&) -> () := {\n\thm.data|dealloc(_)\n}",
          "(func deinit ((param .hm ($&T Hashmap) -)) () (block (expr (pipe (. hm data) "
          "(call dealloc _)))))");
    SHAPE("f (\n a: Int\n b: Int\n) := { }", "(func f ((param a Int -) (param b Int -)) - (block))");
}

static void test_control_flow(void) {
    SHAPE("if x > 3 and not done { a() } else if x == 3 { b() } else { c() }",
          "(if (and (> x 3) (not done)) (block (expr (call a))) (if (== x 3) "
          "(block (expr (call b))) (block (expr (call c)))))");
    SHAPE("if x {\n} \n else {\n}", "(if x (block) (block))");
    SHAPE("while x > 0 { x = x - 1 }", "(while (> x 0) (block (= x (- x 1))))");
    SHAPE("for i in 0..10 { }", "(for i - (.. 0 10) (block))");
    SHAPE("for k, v in m { print(k, v) }", "(for k v m (block (expr (call print k v))))");
    SHAPE("for field in s | #get_fields { field|deinit }",
          "(for field - (pipe s #get_fields) (block (expr (pipe field deinit))))");
    SHAPE("{ tmp := 1 }", "(block (decl tmp - 1))");
    SHAPE("f () := {\n while true {\n  break\n  continue\n }\n return\n}",
          "(func f () - (block (while true (block (break) (continue))) (return)))");
    SHAPE("{ return a + b }", "(block (return (+ a b)))");
}

static void test_pipes(void) {
    SHAPE("total := xs | sum(_)", "(decl total - (pipe xs (call sum _)))");
    SHAPE("buf := arena | alloc(1024)", "(decl buf - (pipe arena (call alloc 1024)))");
    SHAPE("x | m.f | #check_cycles", "(expr (pipe (pipe x (. m f)) #check_cycles))");
    SHAPE("body :=\n      SketchBuilder|init()\n    | trapezoid(&_, 4, 3, 90)\n"
          "    | extrude(&_, 0.1)",
          "(decl body - (pipe (pipe (pipe SketchBuilder (call init)) "
          "(call trapezoid (&x _) 4 3 90)) (call extrude (&x _) 0.1)))");
    SHAPE("result :=\n      load_png(\"image.png\")\n    | keep _ with result\n"
          "    | parallel_process_that_only_reads(&_)\n"
          "    | parallel_process_that_writes(~&_)",
          "(decl result - (pipe (pipe (pipe (call load_png \"image.png\") "
          "(keep _ (result) -)) (call parallel_process_that_only_reads (&x _))) "
          "(call parallel_process_that_writes (~&x _))))");
    SHAPE("a or b | c | d", "(expr (pipe (pipe (or a b) c) d))");
}

static void test_keep_defer_using(void) {
    SHAPE("keep x", "(keep x () -)");
    SHAPE("keep x with y", "(keep x (y) -)");
    SHAPE("keep my_int with my_instance1, my_instance2",
          "(keep my_int (my_instance1 my_instance2) -)");
    SHAPE("#keep my_obj with my_ref using my_allocator", "(keep my_obj (my_ref) my_allocator)");
    SHAPE("keep x with a, b using A", "(keep x (a b) A)");
    SHAPE("#defer my_obj|deinit(_)", "(defer (expr (pipe my_obj (call deinit _))))");
    SHAPE("defer { x = 1 }", "(defer (block (= x 1)))");
    SHAPE("defer x = 2", "(defer (= x 2))");
    SHAPE("using arena { a := [1] }", "(using arena (block (decl a - (list 1))))");
}

static void test_expressions(void) {
    SHAPE("x := 1 + 2 * 3 - 4 / 5 % 6", "(decl x - (- (+ 1 (* 2 3)) (% (/ 4 5) 6)))");
    SHAPE("x := -a.b + &c", "(decl x - (+ (neg (. a b)) (&x c)))");
    SHAPE("x := (1 + 2) * 3", "(decl x - (* (+ 1 2) 3))");
    SHAPE("x := not a == b or c and d", "(decl x - (or (not (== a b)) (and c d)))");
    SHAPE("x := (a < b) < c", "(decl x - (< (< a b) c))");
    SHAPE("x := f(1)(2)[3].y", "(decl x - (. (index (call (call f 1) 2) 3) y))");
    SHAPE("x := ()", "(decl x - ())");
    SHAPE("p := Point(.x = 1, .y = 2)", "(decl p - (call Point (.x 1) (.y 2)))");
    SHAPE("r := (.x = 1, .y = 2)", "(decl r - (record (.x 1) (.y 2)))");
    SHAPE("m := (\"a\" = 1, \"b\" = 2)", "(decl m - (map (pair \"a\" 1) (pair \"b\" 2)))");
    SHAPE("m := (\n \"a\" = 1\n \"b\" = 2\n)", "(decl m - (map (pair \"a\" 1) (pair \"b\" 2)))");
    SHAPE("l := [\n 1,\n 2\n 3,\n]", "(decl l - (list 1 2 3))");
    SHAPE("ha = HeapAllocation (\n .data = allocator|allocate(size)\n .size = size\n)",
          "(= ha (call HeapAllocation (.data (pipe allocator (call allocate size))) (.size size)))");
    SHAPE("t := Pair#(Int, String)", "(decl t - (generic Pair Int String))");
    SHAPE("x := true or false", "(decl x - (or true false))");
    SHAPE("x := [_, _x, iffy, #get_fields]", "(decl x - (list _ _x iffy #get_fields))");
}

static void test_literals(void) {
    SHAPE("x := 0x_FF + 0b101 + 1_000", "(decl x - (+ (+ 255 5) 1000))");
    SHAPE("x := 1.5 + 1e10 + 2.5e-3", "(decl x - (+ (+ 1.5 10000000000.0) 0.0025))");
    SHAPE("x := 0..10", "(decl x - (.. 0 10))");
    SHAPE("x := -9223372036854775808", "(decl x - -9223372036854775808)");
    SHAPE("x := 9223372036854775807", "(decl x - 9223372036854775807)");
    SHAPE("s := \"a\\n\\t\\\"\\\\\\0\\x41\\u{e9}\"", "(decl s - \"a\\n\\x09\\\"\\\\\\x00A\xc3\xa9\")");
    SHAPE("s := \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "(decl s - \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\")");
}

static void test_separators_and_comments(void) {
    SHAPE("a := 1; b := 2;\n;c := 3", "(decl a - 1) (decl b - 2) (decl c - 3)");
    SHAPE("\n\n-- only a comment\n\nx := 1 -- trailing\n\n\n", "(decl x - 1)");
    SHAPE("x := 1\r\ny := 2\r\n", "(decl x - 1) (decl y - 2)");
    SHAPE("x :=\n  1 +\n  2", "(decl x - (+ 1 2))");
    SHAPE("x := (\n  1 + 2\n)", "(decl x - (+ 1 2))");
    SHAPE("x := y\n| f\n| g(_)", "(decl x - (pipe (pipe y f) (call g _)))");
    SHAPE("#!/usr/bin/env keep\nx := 1", "(decl x - 1)");
    SHAPE("\xEF\xBB\xBFx := 1", "(decl x - 1)");
    SHAPE("", "");
    SHAPE("\n", "");
}

static void test_positions(void) {
    Parsed p;
    parse(&p, "x := 1\n  foo (1)\nfor i in r {}\n");
    KpNode *call = p.root->list.items[1]->a;
    CHECKF(call->kind == KP_N_CALL && call->line == 2 && call->col == 7,
          "call position %u:%u", call->line, call->col);
    KpNode *decl = p.root->list.items[0];
    CHECKF(decl->line == 1 && decl->col == 1, "decl position");
    CHECKF(decl->b->depth == 1 && decl->depth == 2, "depths %u %u", decl->b->depth, decl->depth);
    KpNode *f = p.root->list.items[2];
    CHECKF(f->kind == KP_N_FOR && f->line == 3 && f->col == 1, "for position");
    FINISH(&p);

    parse(&p, "s := \"a\\0b\"\n");
    KpNode *s = p.root->list.items[0]->b;
    CHECKF(s->kind == KP_N_STRING && s->str_len == 3 && s->str[1] == 0, "NUL escape");
    FINISH(&p);
}

/* -------------------------------------------------------------- errors */

static void test_syntax_errors(void) {
    /* three independent bad lines, three errors, the good lines kept */
    Parsed p;
    parse(&p, "x := )\ny := 1 2\nok := 1\nprint(,)\n");
    CHECKF(p.diags.count == 3, "3 errors, got %d", p.diags.count);
    if (p.diags.count == 3) {
        CHECKF(p.diags.items[0].line == 1 && p.diags.items[0].col == 6, "first error at 1:6");
        CHECKF(strstr(p.diags.items[0].msg, "unexpected ')'") != NULL, "msg: %s",
              p.diags.items[0].msg);
        CHECKF(p.diags.items[1].line == 2, "second error on line 2");
        CHECKF(p.diags.items[2].line == 4, "third error on line 4");
    }
    /* `y := 1` is complete before `2` is seen, so it is kept too */
    CHECKF(p.root->list.count == 2 && p.root->list.items[1]->kind == KP_N_DECL,
          "good lines kept");
    CHECKF(!p.diags.incomplete, "not incomplete");
    FINISH(&p);

    /* errors inside a block recover at the next line too */
    ERRORS("f () := {\n  x := )\n  y := ]\n  z := 1\n}\n", 2, "unexpected");
    ERRORS("a < b < c", 1, "cannot be chained");
    ERRORS("x := 1 == 2 != 3", 1, "cannot be chained");
    ERRORS("x := 0..1..2", 1, "unexpected");
    ERRORS("x := ", 1, "end of input");
    ERRORS("f(a: Int)", 1, "expected an expression");
    ERRORS("x := (.x : Int)", 1, "declares a field");
    ERRORS("x := (1, 2)", 1, "no tuples");
    ERRORS("x := (1,)", 1, "no tuples");
    ERRORS("y := 1 2", 1, "unexpected number '2', expected end of line");
    ERRORS("{ y := 1 2 }", 1, "expected end of line or `}`");
    ERRORS("f(a b)", 1, "unexpected name 'b'");
    ERRORS("x := (.a = 1, \"b\" = 2)", 1, "either a record");
    ERRORS("f(x) := 3", 1, "must be a block");
    ERRORS("x := { }", 1, "not a value");
    ERRORS("f(a) -> Int", 1, "after the function signature");
    ERRORS("3 = x", 1, "cannot assign");
    ERRORS("f(x = 1)", 1, "key = value");
    ERRORS("x | 3", 1, "after `|`");
    ERRORS("keep 3 with x", 1, "variable name");
    ERRORS("P : Type = (\n .x : Int\n .y = 2\n)", 1, "needs a type");
    ERRORS("A : Abstract = (\n .x : Int\n)", 1, "signature");
    ERRORS("f (1) := { }", 1, "expected a parameter");
    ERRORS("x := [.a = 1]", 1, "expression in a list");
    ERRORS("x := 1 @ 2", -1, "unexpected character '@'");
    ERRORS("s := \"\\q\"", 1, "invalid escape");
    ERRORS("s := \"\\xFF\"", 1, "above");
    ERRORS("s := \"\\u{D800}\"", 1, "scalar");
    ERRORS("s := \"\\u{110000}\"", 1, "scalar");
    ERRORS("s := \"\\u{}\"", 1, "invalid \\u");
    ERRORS("x := 1e999", 1, "out of range");
    ERRORS("if x\n{ }", -1, "unexpected");
    ERRORS("x := ) )\ny := ]\nz := 1 +\n", 3, "unexpected");
    ERRORS("{ x := ) }\n{ y := ] }\n", 2, "unexpected");
    ERRORS("f(\n", 1, "end of input");
}

static void test_incomplete(void) {
    const char *inc[] = {"f(", "{", "x := ", "x := \n", "if x {\n  y := 1\n",
                         "x := [1,\n 2", "f () -> Int := {", "x := 1 +"};
    for (size_t i = 0; i < sizeof inc / sizeof inc[0]; i++) {
        Parsed p;
        parse(&p, inc[i]);
        CHECKF(p.diags.count > 0 && p.diags.incomplete, "incomplete for %s", inc[i]);
        FINISH(&p);
    }
    /* strings cannot span lines: an unterminated one is an error, never
     * "incomplete" (the REPL would wait for a line that cannot help) */
    const char *done[] = {"x := )", "x := 1\n", "f(1)", "\"abc\nx := 1\n", "}", "\"abc", "\"abc\n"};
    for (size_t i = 0; i < sizeof done / sizeof done[0]; i++) {
        Parsed p;
        parse(&p, done[i]);
        CHECKF(!p.diags.incomplete, "not incomplete for %s", done[i]);
        FINISH(&p);
    }
}

static void test_strings_bad(void) {
    ERRORS("s := \"abc\nx := 1\n", 1, "unterminated string");
    ERRORS("s := \"a\xff\"", 1, "invalid UTF-8 in string literal");
    ERRORS("s := \"a\xc0\x80\"", 1, "invalid UTF-8"); /* overlong */
    ERRORS("s := \"a\xed\xa0\x80\"", 1, "invalid UTF-8"); /* surrogate */
    ERRORS("s := \"a\xe2\x82\"", 1, "invalid UTF-8"); /* truncated */
    ERRORS("s := \"\xe2\x82", 1, "unterminated"); /* and bad UTF-8 */
    ERRORS("x := 9223372036854775808", 1, "integer literal too large");
    ERRORS("x := -(9223372036854775808)", 1, "integer literal too large");
    ERRORS("x := 99999999999999999999999", 1, "integer literal too large");
    ERRORS("x := 0xFFFFFFFFFFFFFFFFF", 1, "integer literal too large");
}

static void test_nul_bytes(void) {
    /* a NUL never ends the input; one error per run of bad bytes */
    static const char a[] = "x := 1\0\0\0 + 2\ny := 3\0";
    Parsed p;
    parse_n(&p, a, sizeof a - 1);
    CHECKF(p.diags.count == 2, "2 errors, got %d", p.diags.count);
    CHECKF(has_diag(&p, "unexpected character"), "NUL is unexpected");
    CHECKF(p.root->list.count == 2, "both statements parsed, got %d", p.root->list.count);
    FINISH(&p);

    static const char b[] = "s := \"a\0b\"\n";
    parse_n(&p, b, sizeof b - 1);
    CHECKF(p.diags.count == 0 && p.root->list.count == 1 &&
              p.root->list.items[0]->b->str_len == 3,
          "NUL inside a string is kept");
    FINISH(&p);

    /* a source that is exactly one byte, not NUL-terminated */
    char *one = malloc(1);
    one[0] = 'x';
    parse_n(&p, one, 1);
    CHECKF(p.diags.count == 0 && p.root->list.count == 1, "one-byte source");
    FINISH(&p);
    one[0] = '"';
    parse_n(&p, one, 1);
    CHECKF(p.diags.count == 1 && !p.diags.incomplete, "lone quote");
    FINISH(&p);
    free(one);
}

static char *repeat(const char *prefix, const char *unit, size_t n, const char *suffix,
                    size_t *len) {
    size_t pl = strlen(prefix), ul = strlen(unit), sl = strlen(suffix);
    *len = pl + ul * n + sl;
    char *s = malloc(*len + 1);
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < n; i++) memcpy(s + pl + i * ul, unit, ul);
    memcpy(s + pl + n * ul, suffix, sl);
    s[*len] = 0;
    return s;
}

static void deep(const char *prefix, const char *unit, size_t n, const char *suffix,
                 const char *needle, int line) {
    size_t len;
    char *s = repeat(prefix, unit, n, suffix, &len);
    errors_at(s, len, -1, needle, line);
    free(s);
}

static void test_deep_nesting(void) {
    deep("x := ", "(", 100000, "", "nested too deeply", __LINE__);
    deep("x := ", "[", 100000, "", "nested too deeply", __LINE__);
    deep("x := ", "- ", 100000, "1", "nesting too deep", __LINE__);
    deep("x := ", "not ", 100000, "1", "nesting too deep", __LINE__);
    deep("", "{", 100000, "", "nested too deeply", __LINE__);
    deep("", "if x {", 100000, "", "nested too deeply", __LINE__);
    deep("x := 1", "+1", 100000, "", "nested too deeply", __LINE__);
    deep("x := a", ".b", 100000, "", "nested too deeply", __LINE__);
    deep("x := a", "|f", 100000, "", "nested too deeply", __LINE__);
    deep("x := f", "()", 100000, "", "nested too deeply", __LINE__);
    deep("x := ", "&", 100000, "y", "nesting too deep", __LINE__);
    deep("x : ", "&", 100000, "T", "nesting too deep", __LINE__);
    /* just under the limit is fine */
    size_t len;
    char *s = repeat("x := ", "(", 400, "1", &len);
    char *t = malloc(len + 401);
    memcpy(t, s, len);
    memset(t + len, ')', 400);
    t[len + 400] = 0;
    CLEAN(t);
    free(s);
    free(t);
    s = repeat("x := 1", "+1", 450, "", &len);
    CLEAN(s);
    free(s);
}

static void test_huge_inputs(void) {
    /* a 10 MB string literal */
    size_t n = 10u << 20;
    char *s = malloc(n + 16);
    memcpy(s, "s := \"", 6);
    memset(s + 6, 'a', n);
    memcpy(s + 6 + n, "\"\n", 2);
    Parsed p;
    parse_n(&p, s, n + 8);
    CHECKF(p.diags.count == 0 && p.root->list.count == 1 &&
              p.root->list.items[0]->b->str_len == n,
          "10 MB string");
    FINISH(&p);
    free(s);

    /* 1 MB of random bytes (fixed seed): errors, no crash */
    n = 1u << 20;
    s = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (char)(x >> 16);
    }
    parse_n(&p, s, n);
    CHECKF(p.root != NULL && p.diags.count > 0, "random bytes give errors");
    FINISH(&p);
    /* random printable tokens, to reach deeper grammar states */
    static const char *const words[] = {
        "x", "1", "\"s\"", "(", ")", "[", "]", "{", "}", ",", ".", ":=", ":", "=",
        "|", "&", "$&", "~&", "->", "_", "#(", "keep", "with", "using", "if",
        "else", "for", "in", "while", "return", "+", "<", "..", "\n", "not", "#a"};
    size_t cap = 4u << 20, len = 0;
    char *r = malloc(cap);
    while (len + 16 < cap) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % (sizeof words / sizeof words[0])];
        size_t wl = strlen(w);
        memcpy(r + len, w, wl);
        len += wl;
        r[len++] = ' ';
    }
    parse_n(&p, r, len);
    CHECKF(p.root != NULL && p.diags.count > 0, "random tokens give errors");
    FINISH(&p);
    free(r);
    free(s);
}

/* ---------------------------------------------------------------- lexer */

static void test_lexer_direct(void) {
    static const char text[] = "a\0 ;\n  \"x";
    KpSource src = {"<t>", text, sizeof text - 1};
    KpLexer lx;
    kp_lexer_init(&lx, &src);
    KpToken t = kp_lexer_next(&lx);
    CHECKF(t.off == 0 && t.len == 1 && t.line == 1 && t.col == 1 && !t.err, "ident a");
    t = kp_lexer_next(&lx);
    CHECKF(t.kind == KP_TOK_BAD && t.off == 1 && t.err, "NUL is bad");
    t = kp_lexer_next(&lx);
    CHECKF(t.kind == KP_TOK_SEMI && t.col == 4, "semicolon");
    t = kp_lexer_next(&lx);
    CHECKF(t.kind != KP_TOK_EOF && t.line == 1 && t.col == 5, "newline token");
    t = kp_lexer_next(&lx);
    CHECKF(t.line == 2 && t.col == 3 && t.len == 2 && t.err &&
              strcmp(t.err, "unterminated string") == 0,
          "unterminated string at 2:3");
    t = kp_lexer_next(&lx);
    CHECKF(t.kind == KP_TOK_EOF && t.off == src.len, "eof");
    t = kp_lexer_next(&lx);
    CHECKF(t.kind == KP_TOK_EOF, "eof again");
}

static void test_dump(void) {
    Parsed p;
    parse(&p, "f (a: Int) -> Int := { return a }");
    char buf[16];
    size_t n = kp_ast_sexpr(p.root, buf, sizeof buf);
    CHECKF(n > sizeof buf && strlen(buf) == sizeof buf - 1, "sexpr truncates");
    CHECKF(strcmp(kp_ast_kind_name(KP_N_CALL), "call") == 0, "kind name");
    FINISH(&p);
}

int main(void) {
    test_seed_snippets_parse();
    test_brief_example_parses();
    test_declarations();
    test_assignments();
    test_types();
    test_functions();
    test_control_flow();
    test_pipes();
    test_keep_defer_using();
    test_expressions();
    test_literals();
    test_separators_and_comments();
    test_positions();
    test_syntax_errors();
    test_incomplete();
    test_strings_bad();
    test_nul_bytes();
    test_deep_nesting();
    test_huge_inputs();
    test_lexer_direct();
    test_dump();
    return CHECK_DONE();
}
