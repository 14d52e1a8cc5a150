//! `conntrack`: a drop-in replacement for conntrack-tools 1.4.7's CLI.

#![forbid(unsafe_code)]

fn main() {
    ct_tools::cli::sigpipe::default_action();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(ct_tools::ct::main_with_args(argv));
}
