//! Statistics replies: the global counters (`CT_GET_STATS`) and the
//! per-CPU counters (`CT_GET_STATS_CPU`, `EXP_GET_STATS_CPU`).

use super::attr::Attrs;
use super::NlError;

/// Names of the per-CPU conntrack statistics, index = attribute number.
pub const CT_CPU_STAT_NAMES: [&str; 20] = [
    "",
    "searched",
    "found",
    "new",
    "invalid",
    "ignore",
    "delete",
    "delete_list",
    "insert",
    "insert_failed",
    "drop",
    "early_drop",
    "error",
    "search_restart",
    "clash_resolve",
    "chaintoolong",
    "unknown1",
    "unknown2",
    "unknown3",
    "unknown4",
];

/// Names of the per-CPU expectation statistics.
pub const EXP_CPU_STAT_NAMES: [&str; 4] = ["", "expect_new", "expect_create", "expect_delete"];

pub const CTA_STATS_GLOBAL_ENTRIES: u16 = 1;
pub const CTA_STATS_GLOBAL_MAX_ENTRIES: u16 = 2;

/// Per-CPU counters: `(attribute number, value)` in attribute order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    pub cpu: u16,
    pub values: [Option<u32>; 20],
}

/// Decodes a per-CPU stats reply (the CPU is the nfgenmsg res_id).
pub fn parse_cpu_stats(cpu: u16, attrs: Attrs) -> Result<CpuStats, NlError> {
    let mut s = CpuStats {
        cpu,
        values: [None; 20],
    };
    for a in attrs {
        let a = a?;
        if let Some(slot) = s.values.get_mut(a.ty as usize) {
            *slot = Some(a.be32()?);
        }
    }
    Ok(s)
}

/// Decodes a global stats reply: `(entries, max_entries)`.
pub fn parse_global_stats(attrs: Attrs) -> Result<(Option<u32>, Option<u32>), NlError> {
    let (mut n, mut max) = (None, None);
    for a in attrs {
        let a = a?;
        match a.ty {
            CTA_STATS_GLOBAL_ENTRIES => n = Some(a.be32()?),
            CTA_STATS_GLOBAL_MAX_ENTRIES => max = Some(a.be32()?),
            _ => {}
        }
    }
    Ok((n, max))
}
