//! Rendering entries to stdout for the commands that print them, with the
//! exact per-command choice of format flags the C tool makes, into one
//! reused line buffer and a large buffered stdout (a dump of a million
//! entries allocates nothing per entry).

use std::io::{self, Write};

use ct_core::flow::{Expect, Flow};
use ct_core::format::{self, EventKind, PlainOpts, Tm};

use super::env::SysEnv;
use crate::cli::args::{out, Cmd};

/// Which printing callback of the C tool is being imitated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `mnl_nfct_dump_cb` (`-L`, `-G`): XML header, ktimestamp, labels.
    Dump,
    /// `mnl_nfct_delete_cb` (`-D`): bare XML, no ktimestamp, no labels.
    Delete,
    /// `mnl_nfct_print_cb` (`-U`): bare XML, labels.
    Print,
    /// `event_cb` (`-E`).
    Event,
}

/// Buffered standard output plus the per-entry scratch buffer.
pub struct Printer {
    pub out: io::BufWriter<io::Stdout>,
    pub line: Vec<u8>,
    /// Whether the XML header has been printed.
    pub xml_open: bool,
}

impl Default for Printer {
    fn default() -> Self {
        Self::new()
    }
}

impl Printer {
    pub fn new() -> Printer {
        Printer {
            out: io::BufWriter::with_capacity(1 << 16, io::stdout()),
            line: Vec::with_capacity(2048),
            xml_open: false,
        }
    }

    fn opts(c: &Cmd, site: Site) -> PlainOpts {
        let o = c.output;
        PlainOpts {
            extended: o & out::EXT != 0,
            id: o & out::ID != 0,
            ktimestamp: o & out::KTMS != 0 && matches!(site, Site::Dump | Site::Event),
            labels: c.labelmap.is_some() && site != Site::Delete,
            dump: site == Site::Dump,
        }
    }

    /// Renders `f` into `self.line` (without writing it). Returns false
    /// when nothing is to be printed (unsupported family in save mode
    /// still prints an empty line, as the C tool does).
    pub fn render(&mut self, c: &Cmd, site: Site, f: &Flow, ev: EventKind, env: &SysEnv) {
        self.line.clear();
        let o = c.output;
        if o & out::SAVE != 0 {
            let ev = match (site, ev) {
                (Site::Delete, _) => EventKind::Destroy,
                (Site::Event, e) => e,
                _ => EventKind::New,
            };
            if let Err(e) = format::write_save(&mut self.line, f, ev) {
                // The C tool still prints the partial line it built.
                let _ = self.out.flush();
                eprintln!("WARNING: {e}");
                self.line.push(b'\n');
            }
            return;
        }
        if o & out::JSON != 0 {
            let ev = if site == Site::Event {
                ev
            } else {
                EventKind::None
            };
            format::write_json(&mut self.line, f, ev, env);
            return;
        }
        let po = Self::opts(c, site);
        if o & out::XML != 0 {
            let when = if site == Site::Event && o & out::TMS != 0 {
                Some(super::env::local_tm(super::env::c_time()))
            } else {
                None
            };
            format::write_xml_flow(&mut self.line, f, ev, &po, env, when.as_ref());
        } else {
            format::write_plain(&mut self.line, f, ev, &po, env);
        }
    }

    /// Prints the XML header before the first record when the site
    /// prints one (dump, get and events).
    pub fn xml_header(&mut self, c: &Cmd, site: Site) -> io::Result<()> {
        if c.output & out::XML != 0
            && c.output & (out::SAVE | out::JSON) == 0
            && matches!(site, Site::Dump | Site::Event)
            && !self.xml_open
        {
            self.xml_open = true;
            self.out.write_all(format::XML_HEADER.as_bytes())?;
        }
        Ok(())
    }

    /// Renders and writes one record.
    pub fn entry(&mut self, c: &Cmd, site: Site, f: &Flow, env: &SysEnv) -> io::Result<()> {
        self.xml_header(c, site)?;
        self.render(c, site, f, EventKind::None, env);
        self.out.write_all(&self.line)
    }

    /// Prints `</conntrack>` if the header was printed.
    pub fn xml_footer(&mut self) -> io::Result<()> {
        if self.xml_open {
            self.out.write_all(format::XML_FOOTER.as_bytes())?;
            self.xml_open = false;
        }
        self.out.flush()
    }

    /// One expectation record (`dump_exp_cb` / `event_exp_cb`).
    pub fn expect(&mut self, c: &Cmd, e: &Expect, ev: EventKind) -> io::Result<()> {
        self.line.clear();
        if c.output & out::XML != 0 {
            if !self.xml_open {
                self.xml_open = true;
                self.out.write_all(format::EXP_XML_HEADER.as_bytes())?;
            }
            let when: Option<Tm> = if c.output & out::TMS != 0 {
                Some(super::env::local_tm(super::env::c_time()))
            } else {
                None
            };
            format::write_expect_xml(&mut self.line, e, ev, when.as_ref());
        } else {
            if c.output & out::TMS != 0 {
                let (s, us) = super::env::now();
                // `[%-8ld.%-6ld]\t`: left-justified, space padded.
                let _ = write!(self.line, "[{s:<8}.{us:<6}]\t");
            }
            format::write_expect_plain(&mut self.line, e, ev);
        }
        self.out.write_all(&self.line)
    }

    /// `</expect>` if the header was printed.
    pub fn expect_footer(&mut self) -> io::Result<()> {
        if self.xml_open {
            self.out.write_all(format::EXP_XML_FOOTER.as_bytes())?;
            self.xml_open = false;
        }
        self.out.flush()
    }
}
