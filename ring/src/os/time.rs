//! Local time through libc's `localtime_r`, so that `TZ` and the
//! system's zone are honoured as the C tools honour them; and libc's
//! `time(NULL)`, the coarse clock the C tools compute ages with.

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

/// Seconds since the epoch as libc's `time(NULL)` gives them: on Linux
/// the coarse realtime clock of the last tick, which can be a few
/// milliseconds behind the precise clock's second (so an age computed
/// with the precise clock can be one more than the C tools').
pub fn time_now() -> i64 {
    // SAFETY: time accepts a null pointer and only returns the value.
    unsafe { libc::time(std::ptr::null_mut()) as i64 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_is_the_epoch_seconds_at_most_one_behind() {
        let precise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let coarse = super::time_now();
        assert!(
            (precise - 1..=precise + 1).contains(&coarse),
            "{coarse} {precise}"
        );
    }

    #[test]
    fn converts_the_epoch() {
        let tm = super::local(0).unwrap();
        // 1970 in every zone but those east of UTC at midnight (1970
        // either way: the year starts after the epoch there too)
        assert!(tm.tm_year == 70 || tm.tm_year == 69);
    }
}
