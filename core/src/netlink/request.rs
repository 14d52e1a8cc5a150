//! Request builders: every ctnetlink request the tools send, written into
//! a caller-owned buffer through a [`Writer`] so that many requests can be
//! batched into one `sendmsg`.

use super::ct::{cta, emit_flow, emit_tuple};
use super::exp::{cta_exp, emit_expect};
use super::msg::*;
use super::writer::Writer;
use crate::flow::{Expect, Flow, Tuple};

/// Which conntrack list a dump reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    Normal,
    /// Dump and atomically zero the counters.
    CtrZero,
    Dying,
    Unconfirmed,
}

/// Kernel-side dump filter (`-m`, `-u` of `conntrack -L`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpFilter {
    pub mark: Option<(u32, u32)>,
    pub status: Option<(u32, u32)>,
}

const fn ct(m: u16) -> u16 {
    msg_type(NFNL_SUBSYS_CTNETLINK, m)
}
const fn exp(m: u16) -> u16 {
    msg_type(NFNL_SUBSYS_CTNETLINK_EXP, m)
}

/// A conntrack dump request.
pub fn ct_dump(w: &mut Writer, seq: u32, family: u8, kind: DumpKind, filter: &DumpFilter) {
    let m = match kind {
        DumpKind::Normal => IPCTNL_MSG_CT_GET,
        DumpKind::CtrZero => IPCTNL_MSG_CT_GET_CTRZERO,
        DumpKind::Dying => IPCTNL_MSG_CT_GET_DYING,
        DumpKind::Unconfirmed => IPCTNL_MSG_CT_GET_UNCONFIRMED,
    };
    let mk = w.begin_msg(ct(m), NLM_F_REQUEST | NLM_F_DUMP, seq, family, 0);
    if let Some((v, mask)) = filter.mark {
        w.be32(cta::MARK, v);
        w.be32(cta::MARK_MASK, mask);
    }
    if let Some((v, mask)) = filter.status {
        w.be32(cta::STATUS, v);
        w.be32(cta::STATUS_MASK, mask);
    }
    w.end_msg(mk);
}

/// `CT_GET` of one entry by its tuple(s).
pub fn ct_get(w: &mut Writer, seq: u32, flags: u16, f: &Flow) {
    let mk = w.begin_msg(ct(IPCTNL_MSG_CT_GET), flags, seq, f.l3_family(), 0);
    emit_flow(w, &f.request_view());
    w.end_msg(mk);
}

/// `CT_NEW`: create (`NLM_F_CREATE`, optionally `NLM_F_EXCL`) or update.
pub fn ct_new(w: &mut Writer, seq: u32, flags: u16, family: u8, f: &Flow) {
    let mk = w.begin_msg(ct(IPCTNL_MSG_CT_NEW), flags, seq, family, 0);
    emit_flow(w, &f.request_view());
    w.end_msg(mk);
}

/// `CT_DELETE` of one entry (the whole object, without its id, as the C
/// tool sends it).
pub fn ct_delete(w: &mut Writer, seq: u32, flags: u16, f: &Flow) {
    let mk = w.begin_msg(ct(IPCTNL_MSG_CT_DELETE), flags, seq, f.l3_family(), 0);
    emit_flow(w, &f.request_view());
    w.end_msg(mk);
}

/// `CT_DELETE` by tuple only (what a cache or the daemon uses).
pub fn ct_delete_tuple(
    w: &mut Writer,
    seq: u32,
    flags: u16,
    family: u8,
    t: &Tuple,
    zone: Option<u16>,
) {
    let mk = w.begin_msg(ct(IPCTNL_MSG_CT_DELETE), flags, seq, family, 0);
    emit_tuple(w, cta::TUPLE_ORIG, t);
    if let Some(z) = zone {
        w.be16(cta::ZONE, z);
    }
    w.end_msg(mk);
}

/// Flush the conntrack table (`family` AF_UNSPEC flushes every family).
pub fn ct_flush(w: &mut Writer, seq: u32, family: u8) {
    let mk = w.begin_msg(
        ct(IPCTNL_MSG_CT_DELETE),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        family,
        0,
    );
    w.end_msg(mk);
}

/// Global counters (`conntrack -C`).
pub fn ct_stats(w: &mut Writer, seq: u32) {
    let mk = w.begin_msg(
        ct(IPCTNL_MSG_CT_GET_STATS),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        0,
        0,
    );
    w.end_msg(mk);
}

/// Per-CPU counters (`conntrack -S`).
pub fn ct_stats_cpu(w: &mut Writer, seq: u32) {
    let mk = w.begin_msg(
        ct(IPCTNL_MSG_CT_GET_STATS_CPU),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        0,
        0,
    );
    w.end_msg(mk);
}

/// Expectation dump.
pub fn exp_dump(w: &mut Writer, seq: u32, family: u8) {
    let mk = w.begin_msg(
        exp(IPCTNL_MSG_EXP_GET),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        family,
        0,
    );
    w.end_msg(mk);
}

/// Expectation get / delete by expected tuple (`msg` is EXP_GET or EXP_DELETE).
pub fn exp_by_tuple(w: &mut Writer, seq: u32, msg: u16, family: u8, t: &Tuple) {
    let mk = w.begin_msg(exp(msg), NLM_F_REQUEST | NLM_F_ACK, seq, family, 0);
    emit_tuple(w, cta_exp::TUPLE, t);
    w.end_msg(mk);
}

/// Expectation create.
pub fn exp_new(w: &mut Writer, seq: u32, flags: u16, e: &Expect) {
    let family = e.master.map(|t| t.family()).unwrap_or(e.family);
    let mk = w.begin_msg(exp(IPCTNL_MSG_EXP_NEW), flags, seq, family, 0);
    let req = Expect {
        id: None,
        class: None,
        nat: None,
        func: None,
        ..*e
    };
    emit_expect(w, &req);
    w.end_msg(mk);
}

/// Flush the expectation table.
pub fn exp_flush(w: &mut Writer, seq: u32, family: u8) {
    let mk = w.begin_msg(
        exp(IPCTNL_MSG_EXP_DELETE),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        family,
        0,
    );
    w.end_msg(mk);
}

/// Per-CPU expectation counters.
pub fn exp_stats_cpu(w: &mut Writer, seq: u32) {
    let mk = w.begin_msg(
        exp(IPCTNL_MSG_EXP_GET_STATS_CPU),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        0,
        0,
    );
    w.end_msg(mk);
}
