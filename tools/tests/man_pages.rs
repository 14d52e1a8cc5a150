//! The manual pages in man/ format without a warning (groff -ww), and
//! name what they document: every ctperf subcommand, every conntrackd
//! request. Skips without groff.

use std::path::Path;

fn groff_clean(page: &Path) -> Option<String> {
    let o = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P", "-cbou"])
        .arg(page)
        .output()
        .ok()?;
    assert!(o.status.success(), "{}", page.display());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.trim().is_empty(), "{}: {err}", page.display());
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn pages_format_cleanly_and_cover_the_commands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../man");
    let pages = [
        "conntrack.8",
        "conntrackd.8",
        "conntrackd.conf.5",
        "ctperf.1",
        "nfct.8",
    ];
    let mut text = Vec::new();
    for p in pages {
        match groff_clean(&dir.join(p)) {
            Some(t) => text.push(t),
            None => {
                eprintln!("SKIP: groff is not installed");
                return;
            }
        }
    }
    // groff's UTF-8 output uses U+2010 for hyphens in some fonts
    let norm = |s: &str| {
        let s = s.replace(['\u{2010}', '\u{2212}'], "-");
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let ctperf = norm(&text[3]);
    for sub in [
        "fill",
        "churn",
        "latency",
        "flows",
        "sync source",
        "sync sink",
        "sync hostile",
        "sync forge",
        "sync relay",
        "bench",
    ] {
        assert!(
            ctperf.contains(&format!("ctperf {sub}")),
            "ctperf.1 lacks {sub}"
        );
    }
    let ctd = norm(&text[1]);
    for req in [
        "-c", "-f", "-F", "-i", "-e", "-s", "-R", "-n", "-B", "-t", "-k",
    ] {
        assert!(ctd.contains(req), "conntrackd.8 lacks {req}");
    }
    let nfct = norm(&text[4]);
    for word in [
        "list",
        "add",
        "delete",
        "get",
        "flush",
        "default-set",
        "default-get",
        "disable",
        "version",
        "timeout",
        "helper",
        "tcp",
        "udplite",
        "icmpv6",
        "sctp",
        "dccp",
        "gre",
        "generic",
    ] {
        assert!(nfct.contains(word), "nfct.8 lacks {word}");
    }
}
