#![no_main]
//! Fuzz target `auth_datagram`: the body is `ct_tools::fuzzing::auth_datagram`, shared with
//! the regression test that replays `fuzz/regress/auth_datagram.bin`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ct_tools::fuzzing::auth_datagram(data);
});
