//! Load generation and measurement used by `ctperf`: bulk fills and raw
//! dumps (`fill`), steady churn (`churn`), replication latency between two
//! namespaces (`latency`, with `netns` to enter them), real flows through
//! a firewall namespace (`flows`), the sync protocol spoken directly
//! (`sync`), SVG charts (`svg`) and the named end-to-end scenarios
//! (`bench`).
pub mod bench;
pub mod churn;
pub mod fill;
pub mod flows;
pub mod forge;
pub mod latency;
pub mod netns;
pub mod svg;
pub mod sync;
