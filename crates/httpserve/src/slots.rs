//! Connection slots: at most `max_connections` open connections in all and
//! `max_connections_per_ip` per client address (an IPv6 client is counted by its /64, which one
//! host usually owns whole). Taking a slot is a map update under one short lock; a refused
//! connection costs no task and no buffer.
//!
//! When the total is reached, the oldest *idle* connection — one with no request in progress
//! and no delivery waiting for its acknowledgement: a keep-alive connection between requests,
//! or one that has not finished sending its first request's headers — is closed to make room
//! for the new one. So a flood of idle connections from many addresses cannot keep a client
//! out until header timeouts free slots; only connections that are being served are kept.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::conn::ConnState;

/// The counters shared by one listener's accept loop and its connections.
pub(crate) struct Slots {
    inner: Mutex<Counts>,
    max_total: usize,
    max_per_ip: usize,
}

struct Counts {
    /// Open connections by admission order (the key): the first idle one is the oldest.
    open: BTreeMap<u64, Open>,
    next_id: u64,
    per_ip: HashMap<IpAddr, usize>,
}

/// What the slots know of one open connection.
struct Open {
    ip: Option<IpAddr>,
    /// None in unit tests of the counting alone.
    conn: Option<Arc<ConnState>>,
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every slot is taken by a connection being served.
    Total,
    PerIp,
}

/// One open connection's slot, given back on drop (unless the connection was evicted, which
/// gave it back already).
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
}

impl Slots {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Counts { open: BTreeMap::new(), next_id: 0, per_ip: HashMap::new() }),
            max_total,
            max_per_ip,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Only counters live under this lock; a panic cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection from `ip` (None: a Unix socket, counted in the total only),
    /// whose state is `conn`. When all slots are taken, the oldest idle connection is closed
    /// and its slot given to this one; a connection over its address's cap evicts nobody.
    pub(crate) fn admit(self: &Arc<Self>, ip: Option<IpAddr>, conn: Option<Arc<ConnState>>) -> Result<Slot, Refusal> {
        let ip = ip.map(client_id);
        let mut counts = self.lock();
        if let Some(ip) = ip
            && counts.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip
        {
            return Err(Refusal::PerIp);
        }
        if counts.open.len() >= self.max_total {
            let victim = counts
                .open
                .iter()
                .find(|(_, open)| open.conn.as_ref().is_some_and(|c| c.try_evict()))
                .map(|(id, _)| *id)
                .ok_or(Refusal::Total)?;
            counts.release(victim);
        }
        if let Some(ip) = ip {
            *counts.per_ip.entry(ip).or_insert(0) += 1;
        }
        let id = counts.next_id;
        counts.next_id += 1;
        counts.open.insert(id, Open { ip, conn });
        Ok(Slot { slots: self.clone(), id })
    }

    /// Open connections now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.lock().open.len()
    }
}

impl Counts {
    /// Forgets connection `id` (closed, or evicted); nothing if it was forgotten already.
    fn release(&mut self, id: u64) {
        let Some(open) = self.open.remove(&id) else { return };
        if let Some(ip) = open.ip
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().release(self.id);
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
        let first = slots.admit(Some(a), None).unwrap();
        let _second = slots.admit(Some(a), None).unwrap();
        assert_eq!(slots.admit(Some(a), None).err(), Some(Refusal::PerIp));
        let _third = slots.admit(Some(b), None).unwrap();
        assert_eq!(slots.admit(None, None).err(), Some(Refusal::Total));
        drop(first);
        let _again = slots.admit(Some(a), None).unwrap();
        assert_eq!(slots.open(), 3);
    }

    #[test]
    fn a_full_listener_evicts_its_oldest_idle_connection_and_keeps_busy_ones() {
        let slots = Slots::new(3, 3);
        let (ip, other): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        // Unix-socket pairs stand in for TCP connections: eviction shuts a socket down.
        let pairs: Vec<_> = (0..4).map(|_| std::os::unix::net::UnixStream::pair().unwrap()).collect();
        let state = |i: usize| ConnState::new(Some(std::os::fd::AsRawFd::as_raw_fd(&pairs[i].0)));
        let (busy, idle, newer, newest) = (state(0), state(1), state(2), state(3));
        let _request = busy.request_started();
        let _oldest = slots.admit(Some(ip), Some(busy)).unwrap();
        let evicted = slots.admit(Some(ip), Some(idle)).unwrap();
        let _kept = slots.admit(Some(ip), Some(newer.clone())).unwrap();
        // Full: the oldest connection is serving a request, so the next oldest goes.
        let _admitted = slots.admit(Some(other), Some(newest.clone())).unwrap();
        assert_eq!(slots.open(), 3);
        let mut byte = [0u8; 1];
        let closed = std::io::Read::read(&mut &pairs[1].1, &mut byte).unwrap();
        assert_eq!(closed, 0, "the evicted connection's peer reads end of stream");
        // Its slot was given back at eviction; dropping it later changes nothing.
        drop(evicted);
        assert_eq!(slots.open(), 3);
        // Once the others are busy too (a delivery waiting for its acknowledgement counts),
        // the next connection is refused.
        let _request_too = newer.request_started();
        let _delivery = crate::Connection(newest).watch_delivery();
        assert_eq!(slots.admit(None, None).err(), Some(Refusal::Total));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(client_id(one), client_id(two));
        assert_eq!(client_id("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
