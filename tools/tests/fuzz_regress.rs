//! The fuzz corpora, minimised with `cargo fuzz cmin` after 60 s of each
//! target and packed into `fuzz/regress/TARGET.bin`, replayed through the
//! same bodies as the fuzz targets (`ct_tools::fuzzing`): none may panic.
//! Runs on stable Rust in every CI run.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../fuzz/regress/{target}.bin"));
    let packed = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let inputs = ct_tools::fuzzing::unpack(&packed);
    assert!(inputs.len() > 100, "{target}: {} inputs", inputs.len());
    for i in &inputs {
        f(i);
    }
}

#[test]
fn ctnetlink_corpus() {
    replay("ctnetlink", ct_tools::fuzzing::ctnetlink);
}

#[test]
fn sync_datagram_corpus() {
    replay("sync_datagram", ct_tools::fuzzing::sync_datagram);
}

#[test]
fn auth_datagram_corpus() {
    replay("auth_datagram", ct_tools::fuzzing::auth_datagram);
}

#[test]
fn snapshot_corpus() {
    replay("snapshot", ct_tools::fuzzing::snapshot);
}

#[test]
fn replicator_corpus() {
    replay("replicator", ct_tools::fuzzing::replicator);
}

#[test]
fn nfnl_objects_corpus() {
    replay("nfnl_objects", ct_tools::fuzzing::nfnl_objects);
}

#[test]
fn config_corpus() {
    replay("config", ct_tools::fuzzing::config);
}

#[test]
fn cli_args_corpus() {
    replay("cli_args", ct_tools::fuzzing::cli_args);
}

#[test]
fn unpack_splits_what_was_packed() {
    let mut packed = Vec::new();
    for b in [&b"ab"[..], b"", b"xyz"] {
        packed.extend_from_slice(&(b.len() as u32).to_le_bytes());
        packed.extend_from_slice(b);
    }
    packed.extend_from_slice(&[9, 0]); // a torn tail is ignored
    let v = ct_tools::fuzzing::unpack(&packed);
    assert_eq!(v, vec![&b"ab"[..], b"", b"xyz"]);
}
