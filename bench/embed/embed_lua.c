/*
 * embed_lua.c — the embedding benchmarks through Lua 5.4's C API, twin of
 * embed_keep.c (built against the system's liblua5.4-dev, pkg-config lua5.4).
 *
 *   embed_lua call     the host calls the Lua function add(acc, i)
 *                      1,000,000 times through lua_pcall
 *   embed_lua native   a Lua script calls the C function cadd(acc, i)
 *                      10,000,000 times (lua_pushcfunction)
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <string.h>

static int c_add(lua_State *L) {
    lua_Integer a = luaL_checkinteger(L, 1), b = luaL_checkinteger(L, 2);
    lua_pushinteger(L, a + b);
    return 1;
}

static const char call_src[] = "function add(a, b) return a + b end\n";

static const char native_src[] =
    "local cadd = cadd\n"
    "local acc = 0\n"
    "for i = 0, 10000000 - 1 do acc = cadd(acc, i) end\n"
    "print(acc)\n";

static int die(lua_State *L, const char *what) {
    fprintf(stderr, "embed_lua: %s: %s\n", what, lua_tostring(L, -1));
    return 1;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "call";
    lua_State *L = luaL_newstate();
    if (!L) return 1;
    luaL_openlibs(L);
    if (!strcmp(mode, "call")) {
        if (luaL_dostring(L, call_src)) return die(L, "script");
        lua_getglobal(L, "add");
        int fn = lua_gettop(L);
        lua_Integer acc = 0;
        for (lua_Integer i = 0; i < 1000000; i++) {
            lua_pushvalue(L, fn);
            lua_pushinteger(L, acc);
            lua_pushinteger(L, i);
            if (lua_pcall(L, 2, 1, 0) != LUA_OK) return die(L, "lua_pcall");
            acc = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        printf("%lld\n", (long long)acc);
    } else if (!strcmp(mode, "native")) {
        lua_pushcfunction(L, c_add);
        lua_setglobal(L, "cadd");
        if (luaL_dostring(L, native_src)) return die(L, "script");
    } else {
        fprintf(stderr, "usage: embed_lua call|native\n");
        return 64;
    }
    fflush(stdout);
    lua_close(L);
    return 0;
}
