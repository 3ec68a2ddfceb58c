// A small ABI 1 text module in AssemblyScript: ascii_upper(text) -> text and
// char_count(text) -> integer. Slots are 16 bytes: flags u32, len u32, value u64 (docs/abi.md).

// Declares ABI 1.
export function plwasm_abi_v1(): void {}

// The host's argument buffers; the stub runtime's heap never frees, and the host asks rarely.
export function plwasm_alloc(size: i32): i32 {
  return <i32>heap.alloc(<usize>size);
}

let resultBuffer: usize = 0;
let resultCapacity: u32 = 0;

function buffer(size: u32): usize {
  if (size > resultCapacity) {
    resultBuffer = heap.alloc(<usize>size);
    resultCapacity = size;
  }
  return resultBuffer;
}

export function ascii_upper(frame: usize): void {
  const input = <usize>load<u64>(frame, 8);
  const len = load<u32>(frame, 4);
  const out = buffer(len);
  for (let i: u32 = 0; i < len; i++) {
    let c = load<u8>(input + i);
    if (c >= 97 && c <= 122) c -= 32;
    store<u8>(out + i, c);
  }
  store<u32>(frame, 0, 16);
  store<u32>(frame, len, 20);
  store<u64>(frame, <u64>out, 24);
}

export function char_count(frame: usize): void {
  const input = <usize>load<u64>(frame, 8);
  const len = load<u32>(frame, 4);
  let count: i64 = 0;
  for (let i: u32 = 0; i < len; i++) {
    if ((load<u8>(input + i) & 0xc0) != 0x80) count++;
  }
  store<u32>(frame, 0, 16);
  store<u64>(frame, <u64>count, 24);
}
