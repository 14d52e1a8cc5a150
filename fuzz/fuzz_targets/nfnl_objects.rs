#![no_main]
//! Fuzz target `nfnl_objects`: the body is `ct_tools::fuzzing::nfnl_objects`, shared
//! with the regression test that replays `fuzz/regress/nfnl_objects.bin`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ct_tools::fuzzing::nfnl_objects(data);
});
