#![no_main]
//! Fuzz target `replicator`: the body is `ct_tools::fuzzing::replicator`, shared
//! with the regression test that replays `fuzz/regress/replicator.bin`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ct_tools::fuzzing::replicator(data);
});
