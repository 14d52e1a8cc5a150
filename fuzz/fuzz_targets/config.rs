//! Fuzz target: any bytes through the `conntrackd.conf` parser (and the
//! evaluation and message rendering of what it returns) must give a
//! configuration or an error, never a panic.
#![no_main]
use ct_core::config::{evaluate, parse, StaticLookup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sys = StaticLookup::debian(&["lo", "eth0"]);
    let out = parse(data, "fuzz.conf", &sys);
    for w in &out.warnings {
        let _ = w.c_message();
    }
    match out.result {
        Ok(mut cfg) => {
            for w in evaluate(&mut cfg) {
                let _ = w.c_message();
            }
        }
        Err(e) => {
            let _ = e.c_message_bytes();
            let _ = e.to_string();
        }
    }
});
