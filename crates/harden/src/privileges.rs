//! Capabilities: all of them dropped once the listeners are bound.

use caps::{CapSet, Capability};

use crate::HardenError;

/// Clears the effective, permitted, inheritable and ambient sets, and the bounding set when
/// CAP_SETPCAP allows it (so even an exec could not regain anything). Must run before any
/// other thread exists: capabilities are per thread. Verifies the sets are empty afterwards.
pub fn drop_capabilities() -> Result<(), HardenError> {
    crate::probe::ensure_single_threaded()?;
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP)? {
        for cap in caps::read(None, CapSet::Bounding)? {
            caps::drop(None, CapSet::Bounding, cap)?;
        }
    }
    // Effective before permitted: the kernel refuses an effective set larger than permitted.
    // Sets that are already empty are left alone: under systemd with `CapabilityBoundingSet=`
    // everything is empty from the start, and `SystemCallFilter=~@privileged` makes capset
    // itself fail with EPERM.
    for set in [CapSet::Ambient, CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        if !caps::read(None, set)?.is_empty() {
            caps::clear(None, set)?;
        }
    }
    for (set, name) in [
        (CapSet::Ambient, "ambient"),
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
    ] {
        let remaining = caps::read(None, set)?;
        if !remaining.is_empty() {
            let mut names: Vec<String> = remaining.iter().map(ToString::to_string).collect();
            names.sort();
            return Err(HardenError::CapabilitiesRemain { set: name, remaining: names.join(",") });
        }
    }
    Ok(())
}
