#![no_main]
//! Fuzz target `ctnetlink`: the body is `ct_tools::fuzzing::ctnetlink`, shared with
//! the regression test that replays `fuzz/regress/ctnetlink.bin`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ct_tools::fuzzing::ctnetlink(data);
});
