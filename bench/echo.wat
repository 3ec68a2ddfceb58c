;; The ABI 1 boundary alone: returns its one argument (copies the argument slot to the result
;; slot). Used by bench/varlena.py (wasm_echo_text, wasm_echo_array) and scripts/load.py.
(module (memory (export "memory") 1) (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 1024))
  (func (export "plwasm_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (drop (memory.grow (i32.sub (i32.add (i32.shr_u (global.get $heap) (i32.const 16)) (i32.const 1)) (memory.size))))
    (local.get $p))
  (func (export "echo") (param $f i32)
    (i64.store offset=16 (local.get $f) (i64.load (local.get $f)))
    (i64.store offset=24 (local.get $f) (i64.load offset=8 (local.get $f)))))
