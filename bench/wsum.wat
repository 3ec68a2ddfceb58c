;; A trivial float8 sum aggregate with its state in the guest (plwasm aggregate ABI, docs/abi.md):
;; rows with a NULL are skipped, each state is an 8-byte sum at its handle's address; merge,
;; serialize and deserialize let it run in parallel plans. Used by bench/aggregates.py (wsum)
;; and by the core crate's row-queue test and example.
(module
  (memory (export "memory") 1)
  (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "plwasm_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (block (loop (br_if 1 (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
      (drop (memory.grow (i32.const 1))) (br 0)))
    (local.get $p))
  (func (export "wsum.new") (result i32) (call $alloc (i32.const 8)))
  (func (export "wsum.free") (param i32))
  (func (export "wsum.accumulate") (param $p i32) (param $n i32) (local $h i32)
    (block (loop (br_if 1 (i32.eqz (local.get $n)))
      (if (i32.eqz (i32.load offset=4 (local.get $p))) (then
        (local.set $h (i32.load (local.get $p)))
        (f64.store (local.get $h) (f64.add (f64.load (local.get $h)) (f64.load offset=8 (local.get $p))))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br 0))))
  (func (export "wsum.finalize") (param $f i32)
    (f64.store offset=24 (local.get $f) (f64.load (i32.load offset=8 (local.get $f)))))
  (func (export "wsum.merge") (param $a i32) (param $b i32)
    (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.load (local.get $b)))))
  ;; serialize: the result slot (+16) points at the state's 8 bytes
  (func (export "wsum.serialize") (param $f i32)
    (i32.store offset=20 (local.get $f) (i32.const 8))
    (i64.store offset=24 (local.get $f) (i64.extend_i32_u (i32.load offset=8 (local.get $f)))))
  ;; deserialize: a new state holding the 8 bytes the argument slot points at
  (func (export "wsum.deserialize") (param $f i32) (local $h i32)
    (local.set $h (call $alloc (i32.const 8)))
    (f64.store (local.get $h) (f64.load (i32.load offset=8 (local.get $f))))
    (i64.store offset=24 (local.get $f) (i64.extend_i32_u (local.get $h)))))
