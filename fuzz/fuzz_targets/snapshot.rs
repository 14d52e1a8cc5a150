#![no_main]
//! Fuzz target `snapshot`: the body is `ct_tools::fuzzing::snapshot`, shared with
//! the regression test that replays `fuzz/regress/snapshot.bin`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ct_tools::fuzzing::snapshot(data);
});
