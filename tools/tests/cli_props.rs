//! The command-line parser never panics: random argument vectors built
//! from real option words, values and junk always give a command or an
//! error.

use ct_tools::cli::args::parse;
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "-L",
    "-I",
    "-U",
    "-D",
    "-G",
    "-E",
    "-F",
    "-A",
    "-C",
    "-S",
    "-V",
    "-h",
    "-s",
    "-d",
    "-r",
    "-q",
    "-p",
    "-t",
    "-u",
    "-e",
    "-o",
    "-m",
    "-i",
    "--id",
    "-f",
    "-n",
    "-g",
    "-j",
    "-w",
    "-l",
    "-z",
    "-b",
    "-c",
    "-a",
    "--src-nat",
    "--dst-nat=1.2.3.4",
    "--label-del",
    "--label-add",
    "--orig-zone",
    "--reply-zone",
    "--mask-src",
    "--mask-dst",
    "--tuple-src",
    "--tuple-dst",
    "--sport",
    "--dport",
    "--state",
    "--role",
    "--icmp-type",
    "--icmp-code",
    "--icmp-id",
    "--srckey",
    "--orig-vtag",
    "tcp",
    "udp",
    "sctp",
    "dccp",
    "icmp",
    "icmpv6",
    "gre",
    "200",
    "igmp",
    "expect",
    "dying",
    "e",
    "1.1.1.1",
    "2001:db8::1",
    "10.0.0.0/8",
    "[::1]:80",
    "1.2.3.4:",
    ":",
    "!",
    "!SEEN_REPLY",
    "ASSURED,UNREPLIED",
    "xml,save",
    "NEW,DESTROY",
    "0x10/0xff",
    "LISTEN",
    "client",
    "-",
    "--",
    "",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(WORDS).prop_map(|s| s.to_string()),
        "\\PC{0,12}",
        "-[a-zA-Z{}()\\[\\]<>:!]{1,3}",
        "--[a-z-]{1,12}(=[a-z0-9.]{0,6})?",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn parser_total(words in proptest::collection::vec(word(), 0..14)) {
        let mut argv = vec!["conntrack".to_string()];
        argv.extend(words);
        let _ = parse(argv, &mut std::io::sink());
    }
}
