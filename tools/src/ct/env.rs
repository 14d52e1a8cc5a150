//! The binary's side of [`ct_core::format::Env`]: the clock, local time
//! through libc's `localtime_r` (so TZ is honoured as the C tool does) and
//! the connection-label names.

use ct_core::format::{write_ctime, Env, Tm};

use crate::cli::labels::LabelMap;

/// Local time of `secs` since the epoch.
pub fn local_tm(secs: i64) -> Tm {
    match ct_ring::os::time::local(secs) {
        Some(tm) => Tm {
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u8,
            day: tm.tm_mday as u8,
            hour: tm.tm_hour as u8,
            min: tm.tm_min as u8,
            sec: tm.tm_sec as u8,
            wday: tm.tm_wday as u8,
        },
        None => Tm::from_utc(secs),
    }
}

/// Wall clock now: (seconds, microseconds).
pub fn now() -> (u64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

/// `time(NULL)`, the seconds libnetfilter_conntrack computes ages
/// (`delta-time`) and the XML `<when>` with: the coarse clock, which can
/// be a few milliseconds behind [`now`]'s second.
pub fn c_time() -> i64 {
    ct_ring::os::time::time_now()
}

/// The real environment.
pub struct SysEnv<'a> {
    pub labels: Option<&'a LabelMap>,
}

impl Env for SysEnv<'_> {
    fn now_secs(&self) -> u64 {
        c_time().max(0) as u64
    }
    fn ctime(&self, secs: i64, out: &mut Vec<u8>) {
        write_ctime(out, &local_tm(secs));
    }
    fn label_name(&self, bit: u32) -> Option<&str> {
        self.labels.and_then(|m| m.name(bit))
    }
}
