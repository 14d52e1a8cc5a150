//! Load generation and measurement used by `ctperf`.
pub mod fill;
