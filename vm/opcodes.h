/*
 * opcodes.h — the bytecode, one X-macro list.
 *
 * An instruction is 8 bytes: op, d (8 bits), a, b, c (16 bits each); jumps
 * use a 32-bit signed offset `sbx` in place of b:c, relative to the next
 * instruction.  R(x) is register x of the current frame; RK(x) is a register
 * or, with bit 15 set, constant K(x & 0x7fff) (Lua 5.1's RK encoding).
 * "Set R(a)" always drops what R(a) owned before.
 *
 * The enum, the names printed by --dump-bytecode and the dispatch table all
 * come from this list.
 */
#ifndef KP_OPCODES_H
#define KP_OPCODES_H

#define KP_OPCODES(X)                                                          \
    X(NOP,      "nothing")                                                     \
    X(LOADK,    "R(a) := K(sbx) (a copy; constants are immortal)")             \
    X(LOADI,    "R(a) := Int(sbx)")                                            \
    X(LOADUNIT, "R(a) := ()")                                                  \
    X(LOADBOOL, "R(a) := Bool(b)")                                             \
    X(MOVE,     "R(a) := R(b); a movable R(b) becomes MOVED (at this line)")   \
    X(COPY,     "R(a) := R(b) without moving (references, borrows)")          \
    X(TAKE,     "if R(a) is an implicit borrow, move the value out of its place") \
    X(DROP,     "drop R(a+b-1) .. R(a), last first; each becomes UNSET")       \
    X(ADD,      "R(a) := RK(b) + RK(c)")                                       \
    X(SUB,      "R(a) := RK(b) - RK(c)")                                       \
    X(MUL,      "R(a) := RK(b) * RK(c)")                                       \
    X(DIV,      "R(a) := RK(b) / RK(c) (Int: truncating; zero is an error)")   \
    X(MOD,      "R(a) := RK(b) % RK(c) (Int: sign of the dividend)")          \
    X(ADDF,     "ADD where both operands are Floats by their static types (tested first; anything else runs as ADD)") \
    X(SUBF,     "SUB, the same")                                               \
    X(MULF,     "MUL, the same")                                               \
    X(DIVF,     "DIV, the same")                                               \
    X(EQ,       "R(a) := RK(b) == RK(c)")                                      \
    X(NE,       "R(a) := RK(b) != RK(c)")                                      \
    X(LT,       "R(a) := RK(b) < RK(c)")                                       \
    X(LE,       "R(a) := RK(b) <= RK(c)")                                      \
    X(NEG,      "R(a) := -R(b)")                                               \
    X(NOT,      "R(a) := not R(b) (Bool only)")                                \
    X(BAND,     "R(a) := RK(b) land RK(c) (Int only)")                         \
    X(BOR,      "R(a) := RK(b) lor RK(c) (Int only)")                          \
    X(BXOR,     "R(a) := RK(b) lxor RK(c) (Int only)")                         \
    X(SHL,      "R(a) := RK(b) lsl RK(c) (Int; count 0..63, else an error)")   \
    X(SHR,      "R(a) := RK(b) lsr RK(c) (logical: zeros shift in)")           \
    X(ASR,      "R(a) := RK(b) asr RK(c) (arithmetic: the sign shifts in)")    \
    X(BNOT,     "R(a) := lnot RK(b) (Int only)")                               \
    X(JMP,      "pc += sbx")                                                   \
    X(JMPF,     "if R(a) is false: pc += sbx (R(a) must be Bool)")             \
    X(JMPT,     "if R(a) is true: pc += sbx (R(a) must be Bool)")              \
    X(JLT,      "if not (RK(a) < RK(b)): pc += (int16)c")                      \
    X(JLE,      "if not (RK(a) <= RK(b)): pc += (int16)c")                     \
    X(JEQ,      "if not (RK(a) == RK(b)): pc += (int16)c")                     \
    X(JNE,      "if not (RK(a) != RK(b)): pc += (int16)c")                     \
    X(JLTI,     "if not (R(a) < (int16)b): pc += offset in c:d (Int fast path)") \
    X(JLEI,     "if not (R(a) <= (int16)b): pc += offset")                     \
    X(JGTI,     "if not (R(a) > (int16)b): pc += offset")                      \
    X(JGEI,     "if not (R(a) >= (int16)b): pc += offset")                     \
    X(GETFX,    "an element of a list field, R(x.b).K(x.c)[RK(y.c)]: x is the GETFIELD next and y the GETINDEX after it (into R(y.a)), the start of the general sequence of a = the sequence's length. Done here when the field is a record's (through live references), holds a list, and the element at an Int index in range is a plain value read by value: pc += a; otherwise the sequence runs") \
    X(SETFX,    "a store into an element of a list field, R(x.b).K(x.c)[RK(y.b)] := R(y.c): x is the GETFIELD next and y the SETINDEX after it, the general sequence of a = its length. Done here when the field is a record's (through live writable references), holds a list, the index is an Int in range, and a plain value replaces a plain element the list takes as it is: pc += a; otherwise the sequence runs") \
    X(JFUNIT,   "a field compared with (): x is the GETFIELD next (R(x.b).K(x.c)), the first of the general sequence (GETFIELD, JEQ or JNE, DROP) of a jump taken when the comparison is false; b 0: ==, 1: !=. Decided here when the field is of a record (through live references) and holds a value that is no reference: pc += a (past the sequence) when the comparison holds, else pc += offset in c:d; otherwise the sequence runs") \
    X(ADDI,     "R(a) := R(b) + (int16)c (SUB of a small constant too)")      \
    X(GETFIELD, "R(a) := R(b).K(c); d: 1 take, 2 reference, 4 mutable, 8 implicit borrow, 16 from a temporary") \
    X(SETFIELD, "R(a).K(b) := R(c) (moved in; the old value dropped); d 1: R(c) is a variable of a plain type, a plain value copied (left in it)") \
    X(GETINDEX, "R(a) := R(b)[RK(c)]; d as GETFIELD")                         \
    X(SETINDEX, "R(a)[RK(b)] := R(c) (moved in); d as SETFIELD")              \
    X(NEWLIST,  "R(a) := [] with capacity b")                                  \
    X(NEWLISTK, "R(a) := a new list, a copy of the constant list K(sbx) (a long literal of Int or Float literals)") \
    X(LISTPUSH, "append R(b) to list R(a) (moved in)")                        \
    X(NEWMAP,   "R(a) := empty HashMap")                                       \
    X(MAPSET,   "R(a)[R(b)] := R(c) (key and value moved in)")                \
    X(NEWREC,   "R(a) := record of type K(b) from R(c)..: UNSET args take the default") \
    X(DEFAULT,  "R(a) := the default value of type K(b)")                     \
    X(GETG,     "R(a) := global G(b:c) (vm->globals[b | c << 16]); d as GETFIELD (0 copy/move by value)") \
    X(SETG,     "global G(b:c) := R(a) (moved in); d=1: G(b:c) is dropped instead, d=2: cleared, not dropped")  \
    X(BOXNEW,   "R(a) := a keep box holding R(b) (moved in); name K(c-1); d=1: from allocator R(a)") \
    X(BOXREF,   "R(a) := reference to the value of box R(b)")               \
    X(KEEP,     "keep box R(a) with the owners R(b)..R(b+c-1) (none: manual); R(a) := unset") \
    X(SETREF,   "write R(b) through the $& reference in R(a) (or into R(a) if it owns)") \
    X(USING,    "R(a) := the context allocator; the context becomes allocator R(b)") \
    X(REF,      "R(a) := reference to R(b); d: 1 mutable")                    \
    X(CALL,     "R(a) := R(a)(R(a+1) .. R(a+b)); c: call descriptor K(c-1) or 0") \
    X(CALLS,    "R(a) := overload calls[c-1].ov(R(a+1) .. R(a+b)), bound at compile time") \
    X(VINDEX,   "CALLS of #index (v[i, j]), with a fast path for a View and Int indices") \
    X(VSETINDEX, "CALLS of #setindex (v[i, j] = x), with the same fast path") \
    X(VGET,     "R(a) := element R(c), R(x.a)[, RK(x.b)] of View R(b) (or what it refers to), d indices (bits 4-5: Float 1 / Int 2 elements expected); x: the EXTRA word next. Done: pc += 1 + x.c; else pc += 1 (the general sequence follows)") \
    X(VGETK,    "VGET with RK(c), RK(x.a): an index is a constant") \
    X(EXTRA,    "operands of the instruction before it (never run)") \
    X(DEINIT,   "deinitialize the place R(a) refers to, or R(a) itself (d=1)")\
    X(RET,      "return R(a); the frame's registers are dropped")             \
    X(RET0,     "return ()")                                                   \
    X(CHECK,    "check R(a) against type K(b) (coercing sized ints); c: name K(c-1) for the message") \
    X(FORPREP,  "range loop: R(a) counter, R(a+1) end; if R(a) >= R(a+1): pc += sbx") \
    X(FORLOOP,  "R(a) += 1; if R(a) < R(a+1): R(a+2) := R(a), pc += sbx")     \
    X(ITERPREP, "container loop over R(a) (index R(a+1) := 0), d: mode; empty: pc += sbx") \
    X(ITERNEXT, "next element into R(a+2) (and R(a+3)); if any: pc += sbx")   \
    X(ITEREND,  "end of container loop over R(a): unlock, drop the loop state") \
    X(DEFEREND, "end of an out-of-line defer body (run while unwinding)")     \
    X(HALT,     "end of the main chunk")

typedef enum KpOpcode {
#define KP_X_ENUM(name, doc) KP_BC_##name,
    KP_OPCODES(KP_X_ENUM)
#undef KP_X_ENUM
    KP_BC__COUNT
} KpOpcode;

extern const char *const kp_opcode_names[];

#endif
