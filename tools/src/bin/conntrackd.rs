//! `conntrackd`: the connection-tracking state daemon (stats mode and the
//! sync-mode caches today; the sync protocols come next).

#![forbid(unsafe_code)]

fn main() {
    ct_tools::cli::sigpipe::default_action();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(ct_tools::daemon::main_with_args(argv));
}
