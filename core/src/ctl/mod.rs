//! The conntrackd control socket: request codes (one native-endian `int`
//! per connection, as 1.4.x clients send) and the text of the replies
//! (`stats`: the exact layouts of `conntrackd -s ...`).

pub mod stats;

/// A client request (`include/conntrackd.h` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Request {
    CtFlushMaster = 0,
    CtResyncMaster = 1,
    CtDumpInternal = 16,
    CtDumpExternal = 17,
    CtCommit = 18,
    CtFlushCache = 19,
    Kill = 20,
    Stats = 21,
    SendBulk = 22,
    RequestDump = 23,
    CtDumpIntXml = 24,
    CtDumpExtXml = 25,
    ResetTimers = 26,
    DebugInfo = 27,
    StatsNetwork = 28,
    StatsCache = 29,
    StatsRuntime = 30,
    StatsLink = 31,
    StatsRsqueue = 32,
    CtFlushIntCache = 33,
    CtFlushExtCache = 34,
    StatsProcess = 35,
    StatsQueue = 36,
    ExpStats = 37,
    ExpFlushMaster = 38,
    ExpResyncMaster = 39,
    ExpDumpInternal = 40,
    ExpDumpExternal = 41,
    ExpCommit = 42,
    AllFlushMaster = 43,
    AllResyncMaster = 44,
    AllFlushCache = 45,
    AllCommit = 46,
    ExpDumpIntXml = 47,
    ExpDumpExtXml = 48,
    /// Ours, not 1.4.7's: every counter in the Prometheus text format
    /// (what the metrics endpoint serves).
    Metrics = 100,
    /// Ours, not 1.4.7's (`-s peers`): the sync link's counters that
    /// 1.4.7's `-s network` has no room for (datagrams from unknown
    /// peers, authentication verdicts).
    StatsPeers = 101,
}

impl Request {
    /// Decodes a request code; `None` for unknown codes (which the daemon
    /// ignores, counting `local unknown request`).
    pub fn from_code(c: i32) -> Option<Request> {
        use Request::*;
        Some(match c {
            0 => CtFlushMaster,
            1 => CtResyncMaster,
            16 => CtDumpInternal,
            17 => CtDumpExternal,
            18 => CtCommit,
            19 => CtFlushCache,
            20 => Kill,
            21 => Stats,
            22 => SendBulk,
            23 => RequestDump,
            24 => CtDumpIntXml,
            25 => CtDumpExtXml,
            26 => ResetTimers,
            27 => DebugInfo,
            28 => StatsNetwork,
            29 => StatsCache,
            30 => StatsRuntime,
            31 => StatsLink,
            32 => StatsRsqueue,
            33 => CtFlushIntCache,
            34 => CtFlushExtCache,
            35 => StatsProcess,
            36 => StatsQueue,
            37 => ExpStats,
            38 => ExpFlushMaster,
            39 => ExpResyncMaster,
            40 => ExpDumpInternal,
            41 => ExpDumpExternal,
            42 => ExpCommit,
            43 => AllFlushMaster,
            44 => AllResyncMaster,
            45 => AllFlushCache,
            46 => AllCommit,
            47 => ExpDumpIntXml,
            48 => ExpDumpExtXml,
            100 => Metrics,
            101 => StatsPeers,
            _ => return None,
        })
    }

    pub fn code(self) -> i32 {
        self as i32
    }

    /// The 4 bytes a client sends.
    pub fn to_bytes(self) -> [u8; 4] {
        self.code().to_ne_bytes()
    }

    /// Decodes the 4 bytes a client sent; `Err(code)` for unknown codes,
    /// `Err(-1)` for a short read.
    pub fn from_bytes(b: &[u8]) -> Result<Request, i32> {
        let a: [u8; 4] = b.get(..4).and_then(|s| s.try_into().ok()).ok_or(-1)?;
        let c = i32::from_ne_bytes(a);
        Request::from_code(c).ok_or(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_roundtrip() {
        for c in -5..60 {
            if let Some(r) = Request::from_code(c) {
                assert_eq!(r.code(), c);
                assert_eq!(Request::from_bytes(&r.to_bytes()), Ok(r));
            }
        }
        assert_eq!(Request::from_bytes(&[1, 0]), Err(-1));
        assert_eq!(Request::from_bytes(&99i32.to_ne_bytes()), Err(99));
    }
}
