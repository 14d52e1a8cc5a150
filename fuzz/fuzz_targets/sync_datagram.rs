//! Fuzz target: any received buffer through the sync wire codec (datagram
//! and stream framing, header classification, conntrack and expectation
//! TLV decoding) must not panic, and every message that decodes must
//! re-encode without error.
#![no_main]
use ct_transport::wire::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut counters = RecvCounters::default();
    let mut out = [0u8; 4096];
    for r in Datagram::new(data).chain(Datagram::stream(data)) {
        let m = match r {
            Ok(m) => m,
            Err(e) => {
                counters.record(&e);
                continue;
            }
        };
        let _ = (m.kind(), m.control(), m.attrs());
        match m.decode() {
            Ok(Decoded::Data(Data::Ct(op, f))) => {
                let _ = emit_ct(&mut out, op, m.flags(), m.seq(), &f, &EmitOpts::default());
            }
            Ok(Decoded::Data(Data::Exp(op, e))) => {
                let _ = emit_exp(&mut out, op, m.flags(), m.seq(), &e, &EmitOpts::default());
            }
            Ok(Decoded::Control(c)) => {
                let _ = c.emit(&mut out);
            }
            Err(e) => counters.record(&e),
        }
    }
    let _ = parse_ct(data);
    let _ = parse_exp(data);
});
