#![no_main]
//! Fuzz target `config`: the body is `ct_tools::fuzzing::config`, shared with
//! the regression test that replays `fuzz/regress/config.bin`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ct_tools::fuzzing::config(data);
});
