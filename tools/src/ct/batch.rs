//! `conntrack -R FILE` (`--load-file`): every line is a command line; all
//! lines are parsed before any runs, only `-I -A -U -D -F` are allowed,
//! and the first failure ends the run. No summary lines are printed.

use std::io::{BufRead, Write};

use crate::cli::args::{self, CliError};
use crate::cli::protos::cmd;

const MAX_ARGC: usize = 255;
const PARAM_MAX: usize = 1024;
const LINE_MAX: usize = 10240;

/// `add_param_to_argv`: shell-like splitting with `"..."` quoting.
pub fn split_line(line: &str, argv: &mut Vec<String>) -> Result<(), CliError> {
    let push = |argv: &mut Vec<String>, p: &[u8]| -> Result<(), CliError> {
        if argv.len() + 1 >= MAX_ARGC {
            return Err(CliError::param("too many arguments"));
        }
        argv.push(String::from_utf8_lossy(p).into_owned());
        Ok(())
    };
    let mut param: Vec<u8> = Vec::new();
    let (mut quote_open, mut escaped) = (false, false);
    let add = |param: &mut Vec<u8>, c: u8| -> Result<(), CliError> {
        param.push(c);
        if param.len() >= PARAM_MAX {
            return Err(CliError::param("Parameter too long!"));
        }
        Ok(())
    };
    for &c in line.as_bytes() {
        if quote_open {
            if escaped {
                add(&mut param, c)?;
                escaped = false;
                continue;
            } else if c == b'\\' {
                escaped = true;
                continue;
            } else if c == b'"' {
                quote_open = false;
            } else {
                add(&mut param, c)?;
                continue;
            }
        } else if c == b'"' {
            quote_open = true;
            continue;
        }
        match c {
            b'"' => {}
            b' ' | b'\t' | b'\n' => {
                if param.is_empty() {
                    continue;
                }
            }
            _ => {
                add(&mut param, c)?;
                continue;
            }
        }
        push(argv, &param)?;
        param.clear();
    }
    if !param.is_empty() {
        push(argv, &param)?;
    }
    Ok(())
}

fn cmd_text(c: usize) -> &'static str {
    match c {
        cmd::CT_LIST => "-L",
        cmd::CT_GET => "-G",
        cmd::CT_EVENT => "-E",
        cmd::CT_VERSION => "-V",
        cmd::CT_HELP => "-h",
        cmd::EXP_LIST => "-L expect",
        cmd::EXP_CREATE => "-C expect",
        cmd::EXP_DELETE => "-D expect",
        cmd::EXP_GET => "-G expect",
        cmd::EXP_FLUSH => "-F expect",
        cmd::EXP_EVENT => "-E expect",
        cmd::CT_COUNT => "-C",
        cmd::EXP_COUNT => "-C expect",
        cmd::CT_STATS => "-S",
        cmd::EXP_STATS => "-S expect",
        _ => "unknown",
    }
}

/// Reads `lines` of a batch file (fgets with a 10240-byte buffer).
fn read_lines(path: &str) -> Result<Vec<String>, CliError> {
    let path = if path == "-" { "/dev/stdin" } else { path };
    let f = std::fs::File::open(path)
        .map_err(|_| CliError::param(format!("Failed to open file {path} for reading")))?;
    let mut r = std::io::BufReader::new(f);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        // fgets splits lines longer than the buffer; each piece is then
        // read as a C string, up to its first NUL.
        for chunk in buf.chunks(LINE_MAX - 1) {
            let end = chunk.iter().position(|&b| b == 0).unwrap_or(chunk.len());
            out.push(String::from_utf8_lossy(&chunk[..end]).into_owned());
        }
    }
    Ok(out)
}

/// Runs a batch file.
pub fn run_file(progname: &str, path: &str) -> Result<(), CliError> {
    let mut cmds = Vec::new();
    let mut output_mask = 0;
    let mut mark: Option<(u32, u32)> = None;
    for line in read_lines(path)? {
        let l = line.trim_start_matches([' ', '\t']);
        if l.starts_with('\n') || l.starts_with('#') {
            continue;
        }
        let mut argv = vec![progname.to_string()];
        split_line(l, &mut argv)?;
        let stderr = std::io::stderr();
        let c = args::parse(argv, &mut stderr.lock())?;
        // In 1.4.7 the output mask and the mark value/mask are globals:
        // every line of the batch runs with the state the last parsed line
        // left behind.
        output_mask |= c.output;
        if c.has(args::opt::MARK) || c.has(args::opt::STATUS) {
            mark = Some(c.mark);
        }
        cmds.push(c);
    }
    for c in &mut cmds {
        c.output = output_mask;
        if let Some(m) = mark {
            c.mark = m;
        }
    }
    for c in &cmds {
        let ok = [
            cmd::CT_CREATE,
            cmd::CT_ADD,
            cmd::CT_UPDATE,
            cmd::CT_DELETE,
            cmd::CT_FLUSH,
        ]
        .iter()
        .any(|&b| c.command == 1 << b);
        if !ok {
            return Err(CliError::param(format!(
                "Cannot use command `{}' with --load-file",
                cmd_text(c.cmd)
            )));
        }
    }
    for mut c in cmds {
        super::run(&mut c)?;
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line is read as a C string: up to its first NUL (what 1.4.7's
    /// parser sees of what fgets read), the rest of the line ignored.
    #[test]
    fn a_line_ends_at_its_first_nul() {
        let p = std::env::temp_dir().join(format!("ct-batch-nul-{}", std::process::id()));
        std::fs::write(&p, b"-U -s 10.1.1.1 -m 9\0 -X\n\0-U -m 1\n-D -p udp\n").unwrap();
        let lines = read_lines(p.to_str().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        assert_eq!(lines, ["-U -s 10.1.1.1 -m 9", "", "-D -p udp\n"]);
    }
}
