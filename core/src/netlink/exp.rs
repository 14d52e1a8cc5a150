//! Expectation messages (`IPCTNL_MSG_EXP_*`): decoding into [`Expect`] and
//! encoding in libnetfilter_conntrack's order.

use super::attr::Attrs;
use super::ct::{emit_tuple, parse_tuple};
use super::writer::Writer;
use super::NlError;
use crate::flow::{Expect, ExpectNat, ShortStr};

/// Expectation attributes (`enum ctattr_expect`).
pub mod cta_exp {
    pub const MASTER: u16 = 1;
    pub const TUPLE: u16 = 2;
    pub const MASK: u16 = 3;
    pub const TIMEOUT: u16 = 4;
    pub const ID: u16 = 5;
    pub const HELP_NAME: u16 = 6;
    pub const ZONE: u16 = 7;
    pub const FLAGS: u16 = 8;
    pub const CLASS: u16 = 9;
    pub const NAT: u16 = 10;
    pub const FN: u16 = 11;
    pub const NAT_DIR: u16 = 1;
    pub const NAT_TUPLE: u16 = 2;
}

/// Decodes an expectation message's attributes.
pub fn parse_expect(family: u8, attrs: Attrs) -> Result<Expect, NlError> {
    let mut e = Expect {
        family,
        ..Expect::default()
    };
    for a in attrs {
        let a = a?;
        match a.ty {
            cta_exp::MASTER => e.master = Some(parse_tuple(a.nested())?),
            cta_exp::TUPLE => e.tuple = Some(parse_tuple(a.nested())?),
            cta_exp::MASK => e.mask = Some(parse_tuple(a.nested())?),
            cta_exp::TIMEOUT => e.timeout = Some(a.be32()?),
            cta_exp::ID => e.id = Some(a.be32()?),
            cta_exp::HELP_NAME => e.helper = Some(ShortStr::from_c_bytes(a.payload)),
            cta_exp::ZONE => e.zone = Some(a.be16()?),
            cta_exp::FLAGS => e.flags = Some(a.be32()?),
            cta_exp::CLASS => e.class = Some(a.be32()?),
            cta_exp::FN => e.func = Some(ShortStr::from_c_bytes(a.payload)),
            cta_exp::NAT => {
                let mut n = ExpectNat::default();
                for x in a.nested() {
                    let x = x?;
                    match x.ty {
                        cta_exp::NAT_DIR => n.dir = Some(x.be32()?),
                        cta_exp::NAT_TUPLE => n.tuple = Some(parse_tuple(x.nested())?),
                        _ => {}
                    }
                }
                e.nat = Some(n);
            }
            _ => {}
        }
    }
    Ok(e)
}

/// Encodes the present fields of `e`: TUPLE, MASTER, MASK, TIMEOUT, FLAGS,
/// ZONE, HELP_NAME (the order libnetfilter_conntrack uses), then ID,
/// CLASS, NAT and FN for a complete round trip.
pub fn emit_expect(w: &mut Writer, e: &Expect) {
    if let Some(t) = &e.tuple {
        emit_tuple(w, cta_exp::TUPLE, t);
    }
    if let Some(t) = &e.master {
        emit_tuple(w, cta_exp::MASTER, t);
    }
    if let Some(t) = &e.mask {
        emit_tuple(w, cta_exp::MASK, t);
    }
    if let Some(v) = e.timeout {
        w.be32(cta_exp::TIMEOUT, v);
    }
    if let Some(v) = e.flags {
        w.be32(cta_exp::FLAGS, v);
    }
    if let Some(v) = e.zone {
        w.be16(cta_exp::ZONE, v);
    }
    if let Some(h) = &e.helper {
        w.cstr(cta_exp::HELP_NAME, h.as_str());
    }
    if let Some(v) = e.id {
        w.be32(cta_exp::ID, v);
    }
    if let Some(v) = e.class {
        w.be32(cta_exp::CLASS, v);
    }
    if let Some(n) = &e.nat {
        let nest = w.begin_nest(cta_exp::NAT);
        if let Some(d) = n.dir {
            w.be32(cta_exp::NAT_DIR, d);
        }
        if let Some(t) = &n.tuple {
            emit_tuple(w, cta_exp::NAT_TUPLE, t);
        }
        w.end_nest(nest);
    }
    if let Some(f) = &e.func {
        w.cstr(cta_exp::FN, f.as_str());
    }
}
