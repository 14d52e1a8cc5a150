//! The connection-label name map (`/etc/xtables/connlabel.conf`), read as
//! libnetfilter_conntrack's `nfct_labelmap_new` does: one `BIT NAME` pair
//! per line, `#` starts a comment.

use std::io;

/// Default location of the label map.
pub const CONNLABEL_CONF: &str = "/etc/xtables/connlabel.conf";

/// Bit number ↔ name.
#[derive(Debug, Clone, Default)]
pub struct LabelMap {
    names: Vec<Option<String>>,
}

impl LabelMap {
    /// Loads the default file; the error text is `strerror(errno)`.
    pub fn load_default() -> Result<LabelMap, String> {
        Self::load(CONNLABEL_CONF).map_err(|e| strerror(&e))
    }

    pub fn load(path: &str) -> io::Result<LabelMap> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::parse(&text))
    }

    pub fn parse(text: &str) -> LabelMap {
        let mut m = LabelMap::default();
        for line in text.lines() {
            let line = line.trim_start();
            if line.starts_with('#') {
                continue;
            }
            let mut it = line.split_whitespace();
            let (Some(bit), Some(name)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(bit) = bit.parse::<usize>() else {
                continue;
            };
            if bit >= 128 {
                continue;
            }
            if m.names.len() <= bit {
                m.names.resize(bit + 1, None);
            }
            if m.names[bit].is_none() {
                m.names[bit] = Some(name.to_string());
            }
        }
        m
    }

    /// The bit of a label name.
    pub fn bit(&self, name: &str) -> Option<u32> {
        self.names
            .iter()
            .position(|n| n.as_deref() == Some(name))
            .map(|b| b as u32)
    }

    /// The name of a bit.
    pub fn name(&self, bit: u32) -> Option<&str> {
        self.names.get(bit as usize).and_then(|n| n.as_deref())
    }
}

/// `strerror` text for an I/O error, as glibc prints it.
pub fn strerror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(n),
        None => e.to_string(),
    }
}

/// glibc's message for an errno value.
pub fn errno_text(n: i32) -> String {
    let s = io::Error::from_raw_os_error(n).to_string();
    // Rust appends " (os error N)".
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
