//! `Helper { }`: user-space connection-tracking helpers (via NFQUEUE).

/// Layer-3 protocol of a helper (`inet` or `inet6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelperL3 {
    /// `inet`.
    Inet,
    /// `inet6`.
    Inet6,
}

/// Layer-4 protocol of a helper (`tcp` or `udp`, lower case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelperL4 {
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
}

impl HelperL4 {
    /// The IP protocol number.
    pub fn protonum(&self) -> u8 {
        match self {
            HelperL4::Tcp => 6,
            HelperL4::Udp => 17,
        }
    }
}

/// `Policy NAME { ExpectMax N; ExpectTimeout N }` (missing values are 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperPolicy {
    /// The policy name (one of the helper's).
    pub name: String,
    /// `ExpectMax`.
    pub expect_max: u32,
    /// `ExpectTimeout` (s).
    pub expect_timeout: u32,
}

/// `Type NAME L3 L4 { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperInstance {
    /// Helper name (`ftp`, `tftp`, ...).
    pub name: String,
    /// Layer 3.
    pub l3: HelperL3,
    /// Layer 4.
    pub l4: HelperL4,
    /// `QueueNum` (0 by default). Upstream pops its pending settings as a
    /// stack, so with several `QueueNum` lines the FIRST one wins.
    pub queue_num: u32,
    /// `QueueLen` (0 = kernel default).
    pub queue_len: u32,
    /// Policies, in the order upstream applies them (reverse source
    /// order: with the same name twice, the FIRST one ends up in force).
    pub policies: Vec<HelperPolicy>,
}

/// The merged `Helper { }` blocks.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HelperSection {
    /// `Setup on|off`: create the kernel helper objects at start-up.
    pub setup: bool,
    /// Helper instances in order of appearance (upstream lists them
    /// newest first).
    pub helpers: Vec<HelperInstance>,
}
