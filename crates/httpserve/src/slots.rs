//! Connection slots: at most `max_connections` open connections in all and
//! `max_connections_per_ip` per client address (an IPv6 client is counted by its /64, which one
//! host usually owns whole). Taking a slot is a map update under one short lock; a refused
//! connection costs no task and no buffer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The counters shared by one listener's accept loop and its connections.
pub(crate) struct Slots {
    inner: Mutex<Counts>,
    max_total: usize,
    max_per_ip: usize,
}

struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total,
    PerIp,
}

/// One open connection's slot, given back on drop.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    ip: Option<IpAddr>,
}

impl Slots {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self { inner: Mutex::new(Counts { total: 0, per_ip: HashMap::new() }), max_total, max_per_ip })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Only counters live under this lock; a panic cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection from `ip` (None: a Unix socket, counted in the total only).
    pub(crate) fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Slot, Refusal> {
        let ip = ip.map(client_id);
        let mut counts = self.lock();
        if counts.total >= self.max_total {
            return Err(Refusal::Total);
        }
        if let Some(ip) = ip {
            let open = counts.per_ip.entry(ip).or_insert(0);
            if *open >= self.max_per_ip {
                return Err(Refusal::PerIp);
            }
            *open += 1;
        }
        counts.total += 1;
        Ok(Slot { slots: self.clone(), ip })
    }

    /// Open connections now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.lock();
        counts.total -= 1;
        if let Some(ip) = self.ip
            && let Some(open) = counts.per_ip.get_mut(&ip)
        {
            *open -= 1;
            if *open == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

/// The address a client is counted by: IPv4 as is (also when mapped into IPv6), IPv6 by /64.
pub(crate) fn client_id(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn per_ip_and_total_caps_refuse_and_slots_come_back() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.admit(Some(a)).unwrap();
        let _second = slots.admit(Some(a)).unwrap();
        assert_eq!(slots.admit(Some(a)).err(), Some(Refusal::PerIp));
        let _third = slots.admit(Some(b)).unwrap();
        assert_eq!(slots.admit(None).err(), Some(Refusal::Total));
        drop(first);
        let _again = slots.admit(Some(a)).unwrap();
        assert_eq!(slots.open(), 3);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(client_id(one), client_id(two));
        assert_eq!(client_id("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
