//! The checks conntrackd runs on a parsed configuration: upstream's
//! `evaluate()` (client and daemon) and the mode initialisation (daemon).

use super::model::Config;
use super::warning::{Phase, Warning, WarningKind};

/// Apply upstream's post-parse rules to `config` and return their
/// warnings, in the order conntrackd prints them:
///
/// * [`Phase::Evaluate`]: `CommitTimeout` together with
///   `DisableExternalCache on` → warning, and the timeout is reset to 0;
/// * [`Phase::Init`] (daemon mode only): `Sync` without a `Mode` block →
///   warning; [`super::SyncSection::mode`] then reports FTFW.
///
/// Upstream's "No running mode specified" warning is not produced: in
/// 1.4.7 it is unreachable (a file without `Sync` and `Stats` runs neither
/// mode, see [`super::RunMode::None`]).
pub fn evaluate(config: &mut Config) -> Vec<Warning> {
    let mut out = Vec::new();
    let spans = &config.spans;
    if let Some(sync) = &mut config.sync {
        if sync.disable_external_cache && sync.commit_timeout != 0 {
            sync.commit_timeout = 0;
            out.push(Warning {
                span: spans.commit_timeout.unwrap_or_default(),
                phase: Phase::Evaluate,
                kind: WarningKind::CommitTimeoutIgnored,
            });
        }
        if sync.modes.selected().is_none() {
            out.push(Warning {
                span: spans.sync.unwrap_or_default(),
                phase: Phase::Init,
                kind: WarningKind::NoSyncMode,
            });
        }
    }
    out
}
