//! Shared pieces of the binaries.
