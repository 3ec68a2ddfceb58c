/*
 * A small ABI 1 text module in C (clang --target=wasm32, no libc): ascii_upper(text) -> text
 * and char_count(text) -> integer. See docs/abi.md for the frame layout.
 */
#include <stdint.h>

typedef struct {
    uint32_t flags; /* bit 0: NULL */
    uint32_t len;   /* bytes (text, bytea) or elements (arrays) */
    uint64_t value; /* fixed-width value, or the guest address of the bytes */
} slot;

__attribute__((import_module("plwasm"), import_name("raise")))
void plwasm_raise(const char *sqlstate, const char *message, uint32_t message_len);

extern unsigned char __heap_base;
static uintptr_t heap_top;

/* Declares ABI 1. */
__attribute__((export_name("plwasm_abi_v1"))) void plwasm_abi_v1(void) {}

/* A bump allocator: the host asks for argument buffers rarely and never frees them. */
__attribute__((export_name("plwasm_alloc"))) uint32_t plwasm_alloc(uint32_t size) {
    if (!heap_top) heap_top = (uintptr_t)&__heap_base;
    uintptr_t start = (heap_top + 7) & ~(uintptr_t)7;
    uintptr_t end = start + size;
    uintptr_t have = __builtin_wasm_memory_size(0) * 65536;
    if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (__SIZE_TYPE__)-1)
        return 0;
    heap_top = end;
    return (uint32_t)start;
}

/* One result buffer, reused by every call and grown when a result needs more. */
static char *result_buffer(uint32_t size) {
    static char *buffer;
    static uint32_t capacity;
    if (size > capacity) {
        buffer = (char *)(uintptr_t)plwasm_alloc(size);
        capacity = size;
        if (!buffer) {
            static const char message[] = "out of memory for the result";
            plwasm_raise("53200", message, sizeof message - 1);
        }
    }
    return buffer;
}

/* ascii_upper(text) -> text: a-z upper-cased, every other byte (UTF-8 included) unchanged. */
__attribute__((export_name("ascii_upper"))) void ascii_upper(slot *frame) {
    const char *in = (const char *)(uintptr_t)frame[0].value;
    uint32_t len = frame[0].len;
    char *out = result_buffer(len);
    for (uint32_t i = 0; i < len; i++)
        out[i] = (in[i] >= 'a' && in[i] <= 'z') ? (char)(in[i] - 32) : in[i];
    frame[1] = (slot){.flags = 0, .len = len, .value = (uintptr_t)out};
}

/* char_count(text) -> integer: characters, not bytes (UTF-8 continuation bytes skipped). */
__attribute__((export_name("char_count"))) void char_count(slot *frame) {
    const unsigned char *in = (const unsigned char *)(uintptr_t)frame[0].value;
    int32_t count = 0;
    for (uint32_t i = 0; i < frame[0].len; i++)
        count += (in[i] & 0xC0) != 0x80;
    frame[1] = (slot){.flags = 0, .len = 0, .value = (uint64_t)(int64_t)count};
}
