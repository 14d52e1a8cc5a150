#![no_main]
//! Fuzz target `cli_args`: the body is `ct_tools::fuzzing::cli_args`, shared with
//! the regression test that replays `fuzz/regress/cli_args.bin`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ct_tools::fuzzing::cli_args(data);
});
