#![no_main]
//! Fuzz target `sync_datagram`: the body is `ct_tools::fuzzing::sync_datagram`, shared with
//! the regression test that replays `fuzz/regress/sync_datagram.bin`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ct_tools::fuzzing::sync_datagram(data);
});
