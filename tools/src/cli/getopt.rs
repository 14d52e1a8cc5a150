//! A faithful port of GNU `getopt_long` (permuting mode, `opterr = 0`,
//! leading `:` in the option string), because `conntrack`'s observable
//! behaviour depends on its details: argument permutation, unique-prefix
//! matching of long options, optional arguments that are only taken when
//! attached, and the value of `optind` that the tool peeks at.

/// `has_arg` of a long option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    No,
    Required,
    Optional,
}

/// One long option: name, argument kind and the value returned for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongOpt {
    pub name: &'static str,
    pub has_arg: HasArg,
    pub val: i32,
}

/// What one call of [`Getopt::next`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// An option with its value (`val` of the long option or the short
    /// option character) and its argument, if any.
    Opt(i32, Option<String>),
    /// Unknown or ambiguous option (getopt's `'?'`).
    Unknown,
    /// Missing required argument (getopt's `':'`).
    MissingArg,
}

/// Parser state, the equivalent of getopt's globals.
#[derive(Debug)]
pub struct Getopt {
    /// The argument vector, permuted in place as GNU getopt does.
    pub argv: Vec<String>,
    pub optind: usize,
    nextchar: Option<(usize, usize)>, // (argv index, byte offset)
    first_nonopt: usize,
    last_nonopt: usize,
    optstring: &'static str,
}

impl Getopt {
    pub fn new(argv: Vec<String>, optstring: &'static str) -> Getopt {
        Getopt {
            argv,
            optind: 1,
            nextchar: None,
            first_nonopt: 1,
            last_nonopt: 1,
            optstring,
        }
    }

    fn exchange(&mut self) {
        // Rotate [first_nonopt, last_nonopt) after [last_nonopt, optind).
        let (a, b, c) = (self.first_nonopt, self.last_nonopt, self.optind);
        self.argv[a..c].rotate_left(b - a);
        self.first_nonopt += c - b;
        self.last_nonopt = c;
    }

    fn is_nonopt(&self, i: usize) -> bool {
        let s = self.argv[i].as_bytes();
        s.first() != Some(&b'-') || s.len() == 1
    }

    /// The next option, or `None` when all options are processed.
    pub fn next(&mut self, longopts: &[LongOpt]) -> Option<Got> {
        let argc = self.argv.len();
        if self.optind == 0 {
            self.optind = 1;
        }
        if self.nextchar.is_none() {
            if self.last_nonopt > self.optind {
                self.last_nonopt = self.optind;
            }
            if self.first_nonopt > self.optind {
                self.first_nonopt = self.optind;
            }
            if self.first_nonopt != self.last_nonopt && self.last_nonopt != self.optind {
                self.exchange();
            } else if self.last_nonopt != self.optind {
                self.first_nonopt = self.optind;
            }
            while self.optind < argc && self.is_nonopt(self.optind) {
                self.optind += 1;
            }
            self.last_nonopt = self.optind;

            if self.optind != argc && self.argv[self.optind] == "--" {
                self.optind += 1;
                if self.first_nonopt != self.last_nonopt && self.last_nonopt != self.optind {
                    self.exchange();
                } else if self.first_nonopt == self.last_nonopt {
                    self.first_nonopt = self.optind;
                }
                self.last_nonopt = argc;
                self.optind = argc;
            }
            if self.optind == argc {
                if self.first_nonopt != self.last_nonopt {
                    self.optind = self.first_nonopt;
                }
                return None;
            }
            if self.argv[self.optind].starts_with("--") {
                return Some(self.long(longopts));
            }
            self.nextchar = Some((self.optind, 1));
        }
        Some(self.short())
    }

    fn long(&mut self, longopts: &[LongOpt]) -> Got {
        let word = self.argv[self.optind][2..].to_string();
        let (name, value) = match word.find('=') {
            Some(i) => (&word[..i], Some(word[i + 1..].to_string())),
            None => (&word[..], None),
        };
        let mut found: Option<LongOpt> = None;
        let mut ambig = false;
        let mut exact = false;
        for o in longopts {
            if o.name.starts_with(name) {
                if o.name.len() == name.len() {
                    found = Some(*o);
                    exact = true;
                    break;
                }
                match found {
                    None => found = Some(*o),
                    Some(f) => {
                        if f.has_arg != o.has_arg || f.val != o.val {
                            ambig = true;
                        }
                    }
                }
            }
        }
        self.optind += 1;
        if ambig && !exact {
            return Got::Unknown;
        }
        let Some(o) = found else {
            return Got::Unknown;
        };
        match (value, o.has_arg) {
            (Some(_), HasArg::No) => Got::Unknown,
            (Some(v), _) => Got::Opt(o.val, Some(v)),
            (None, HasArg::Required) => {
                if self.optind < self.argv.len() {
                    let v = self.argv[self.optind].clone();
                    self.optind += 1;
                    Got::Opt(o.val, Some(v))
                } else {
                    Got::MissingArg
                }
            }
            (None, _) => Got::Opt(o.val, None),
        }
    }

    fn short(&mut self) -> Got {
        let (ai, off) = self.nextchar.expect("nextchar set");
        let word = self.argv[ai].clone();
        let bytes = word.as_bytes();
        let c = bytes[off];
        let rest_start = off + 1;
        let at_end = rest_start >= bytes.len();
        self.nextchar = if at_end { None } else { Some((ai, rest_start)) };
        if at_end {
            self.optind += 1;
        }
        let spec = self.optstring.as_bytes();
        let pos = spec.iter().position(|&x| x == c);
        let Some(pos) = pos.filter(|_| c != b':' && c != b';') else {
            return Got::Unknown;
        };
        let c = c as i32;
        if spec.get(pos + 1) == Some(&b':') {
            let rest = if at_end {
                None
            } else {
                Some(String::from_utf8_lossy(&bytes[rest_start..]).into_owned())
            };
            if spec.get(pos + 2) == Some(&b':') {
                // Optional argument: only when attached.
                if rest.is_some() {
                    self.optind += 1;
                }
                self.nextchar = None;
                return Got::Opt(c, rest);
            }
            self.nextchar = None;
            if let Some(r) = rest {
                self.optind += 1;
                return Got::Opt(c, Some(r));
            }
            if self.optind >= self.argv.len() {
                return Got::MissingArg;
            }
            let v = self.argv[self.optind].clone();
            self.optind += 1;
            return Got::Opt(c, Some(v));
        }
        Got::Opt(c, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &[LongOpt] = &[
        LongOpt {
            name: "dump",
            has_arg: HasArg::Optional,
            val: 'L' as i32,
        },
        LongOpt {
            name: "src",
            has_arg: HasArg::Required,
            val: 's' as i32,
        },
        LongOpt {
            name: "src-nat",
            has_arg: HasArg::Optional,
            val: 'n' as i32,
        },
    ];

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn permutes_and_prefixes() {
        let mut g = Getopt::new(args(&["ct", "foo", "-L", "--sr=1", "--dum"]), ":L::s:n::");
        assert_eq!(g.next(LONG), Some(Got::Opt('L' as i32, None)));
        assert_eq!(g.next(LONG), Some(Got::Unknown)); // --sr ambiguous
        assert_eq!(g.next(LONG), Some(Got::Opt('L' as i32, None)));
        assert_eq!(g.next(LONG), None);
        assert_eq!(g.argv[g.optind], "foo");
    }

    #[test]
    fn required_and_missing() {
        let mut g = Getopt::new(args(&["ct", "-s1.1.1.1", "-s", "x", "-s"]), ":L::s:n::");
        assert_eq!(
            g.next(LONG),
            Some(Got::Opt('s' as i32, Some("1.1.1.1".into())))
        );
        assert_eq!(g.next(LONG), Some(Got::Opt('s' as i32, Some("x".into()))));
        assert_eq!(g.next(LONG), Some(Got::MissingArg));
        assert_eq!(g.argv[g.optind - 1], "-s");
    }

    #[test]
    fn clustered_unknown() {
        let mut g = Getopt::new(args(&["ct", "-zX"]), ":zL::");
        assert_eq!(g.next(LONG), Some(Got::Opt('z' as i32, None)));
        assert_eq!(g.next(LONG), Some(Got::Unknown));
        assert_eq!(g.argv[g.optind - 1], "-zX");
    }
}
