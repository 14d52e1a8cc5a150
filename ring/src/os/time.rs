//! Local time through libc's `localtime_r`, so that `TZ` and the
//! system's zone are honoured as the C tools honour them.

/// The broken-down local time of `secs` since the epoch (`None` when
/// libc cannot convert it). libc reads `TZ` from the environment: no
/// thread may change the environment meanwhile (these programs never
/// do).
pub fn local(secs: i64) -> Option<libc::tm> {
    let t = secs as libc::time_t;
    // SAFETY: an all-zero tm is a valid value of this plain C struct
    // (its zone pointer null); localtime_r only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: t and tm are live for the call.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    (!r.is_null()).then_some(tm)
}

#[cfg(test)]
mod tests {
    #[test]
    fn converts_the_epoch() {
        let tm = super::local(0).unwrap();
        // 1970 in every zone but those east of UTC at midnight (1970
        // either way: the year starts after the epoch there too)
        assert!(tm.tm_year == 70 || tm.tm_year == 69);
    }
}
