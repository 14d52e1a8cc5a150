//! Fuzz target: any datagram through the ctnetlink parsers (messages,
//! conntrack and expectation attributes, statistics) must not panic.
#![no_main]
use ct_core::netlink::attr::Attrs;
use ct_core::netlink::ct::parse_flow;
use ct_core::netlink::exp::parse_expect;
use ct_core::netlink::msg::Messages;
use ct_core::netlink::stats::{parse_cpu_stats, parse_global_stats};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for m in Messages::new(data).flatten() {
        let _ = m.error_code();
        if let Ok((g, attrs)) = m.nfgen() {
            let _ = parse_flow(g.family, attrs.clone());
            let _ = parse_expect(g.family, attrs.clone());
            let _ = parse_cpu_stats(g.res_id, attrs.clone());
            let _ = parse_global_stats(attrs);
        }
    }
    let _ = parse_flow(2, Attrs::new(data));
});
