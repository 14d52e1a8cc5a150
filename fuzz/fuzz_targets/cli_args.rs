//! Fuzz target: any argument vector through the `conntrack` command-line
//! parser must give a command or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut argv = vec!["conntrack".to_string()];
    argv.extend(text.split('\u{0}').map(|s| s.to_string()));
    let _ = ct_tools::cli::args::parse(argv, &mut std::io::sink());
});
