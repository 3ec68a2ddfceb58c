//! A small ABI 1 text module in Zig (wasm32-freestanding): ascii_upper(text) -> text and
//! char_count(text) -> integer. See docs/abi.md for the frame layout.

const Slot = extern struct {
    flags: u32, // bit 0: NULL
    len: u32, // bytes (text, bytea) or elements (arrays)
    value: u64, // fixed-width value, or the guest address of the bytes
};

extern "plwasm" fn raise(sqlstate: [*]const u8, message: [*]const u8, message_len: u32) void;

extern var __heap_base: u8;
var heap_top: usize = 0;

/// Declares ABI 1.
export fn plwasm_abi_v1() void {}

/// A bump allocator: the host asks for argument buffers rarely and never frees them.
export fn plwasm_alloc(size: u32) u32 {
    if (heap_top == 0) heap_top = @intFromPtr(&__heap_base);
    const start = (heap_top + 7) & ~@as(usize, 7);
    const end = start + size;
    const have = @wasmMemorySize(0) * 65536;
    if (end > have and @wasmMemoryGrow(0, (end - have + 65535) / 65536) < 0) return 0;
    heap_top = end;
    return @intCast(start);
}

var result_buffer: [*]u8 = undefined;
var result_capacity: u32 = 0;

fn buffer(size: u32) [*]u8 {
    if (size > result_capacity) {
        const address = plwasm_alloc(size);
        if (address == 0) {
            const message = "out of memory for the result";
            raise("53200", message, message.len);
        }
        result_buffer = @ptrFromInt(address);
        result_capacity = size;
    }
    return result_buffer;
}

fn frameSlots(frame: u32, count: usize) []Slot {
    const first: [*]Slot = @ptrFromInt(frame);
    return first[0..count];
}

export fn ascii_upper(frame: u32) void {
    const slots = frameSlots(frame, 2);
    const input: [*]const u8 = @ptrFromInt(@as(usize, @intCast(slots[0].value)));
    const len = slots[0].len;
    const out = buffer(len);
    for (0..len) |i| {
        const c = input[i];
        out[i] = if (c >= 'a' and c <= 'z') c - 32 else c;
    }
    slots[1] = .{ .flags = 0, .len = len, .value = @intFromPtr(out) };
}

export fn char_count(frame: u32) void {
    const slots = frameSlots(frame, 2);
    const input: [*]const u8 = @ptrFromInt(@as(usize, @intCast(slots[0].value)));
    var count: i64 = 0;
    for (input[0..slots[0].len]) |c| {
        if ((c & 0xC0) != 0x80) count += 1;
    }
    slots[1] = .{ .flags = 0, .len = 0, .value = @bitCast(count) };
}
