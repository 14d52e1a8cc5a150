//! `ct-transport`: the conntrackd sync wire codec and protocol state
//! machines. Placeholder crate: the sync protocols are issue 4's work and
//! nothing here is implemented yet.
