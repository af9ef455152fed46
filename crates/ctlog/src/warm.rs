//! Keeping the hash tiles in memory. A proof reads one tile per eight tree levels; its level-0
//! tile is a random one of `size / 256`. At 100M leaves those tiles are 6.4 GB spread through a
//! 32 GiB file between the leaf rows, so right after a start (or after a build that pushed them
//! out of the page cache) a random proof waited for the disk: p99 300 µs against 13–19 µs at
//! 1M–10M leaves, where the whole file is cached. At start-up a background thread reads every
//! tile once, so that proofs find them in the page cache from then on — when they fit in half
//! of the machine's memory; on a smaller machine reading them would only evict them again, and
//! proofs go to the disk as before. Read a second time (by a proof), a page moves to the
//! kernel's active list, which streams of once-read pages (leaf rows, appends) do not displace.
//! The kernel may still reclaim page cache nobody touched for a while (this VM's host does, after
//! about a minute); tiles in the process's own cache (`cache_mib`, filled by this same read when
//! it is large enough) stay until the process evicts them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::{LogStore, StoreError};

/// Bytes of SHA3 tiles per leaf: a full fat tile stores its 256 leaves' hashes and the nodes
/// above them inside the tile except its root (510 × 32 bytes), the higher tiles 1/256 of that.
const TILE_BYTES_PER_LEAF: u64 = 64;
/// Tiles read per read transaction.
const TILES_PER_READ: usize = 4096;

/// Whether the tiles of a tree of `tree_size` leaves are warmed on a machine with
/// `memory_bytes` of RAM: only if they take at most half of it.
pub fn worth_warming(tree_size: u64, memory_bytes: u64) -> bool {
    tree_size.saturating_mul(TILE_BYTES_PER_LEAF) <= memory_bytes / 2
}

/// What a warm-up read.
#[derive(Clone, Copy, Debug)]
pub struct Warmed {
    /// Bytes of tiles read.
    pub bytes: u64,
    /// How long it took.
    pub took: Duration,
}

/// Reads every SHA3 tile of the log once (see the module doc), in short read transactions.
pub fn read_all_tiles(store: &LogStore) -> Result<Warmed, StoreError> {
    let started = Instant::now();
    let (mut next, mut bytes) = (Some((0, 0)), 0);
    while let Some(from) = next {
        let (after, read) = store.read_tiles(from, TILES_PER_READ)?;
        (next, bytes) = (after, bytes + read);
    }
    Ok(Warmed { bytes, took: started.elapsed() })
}

/// Starts the warm-up thread if the tiles of `tree_size` leaves fit (see [`worth_warming`]);
/// it logs what it did. A failure only ends the warm-up: proofs still read from the disk.
pub fn spawn(store: Arc<LogStore>, tree_size: u64) {
    if tree_size == 0 {
        return;
    }
    let Some(memory) = harden::physical_memory_bytes() else {
        return;
    };
    if !worth_warming(tree_size, memory) {
        crate::DAEMON.log(format_args!(
            "hash tiles not preloaded: about {} MiB for {tree_size} leaves, more than half of the {} MiB of memory",
            tree_size.saturating_mul(TILE_BYTES_PER_LEAF) >> 20,
            memory >> 20
        ));
        return;
    }
    let started = std::thread::Builder::new().name("tile-warmer".into()).spawn(move || match read_all_tiles(&store) {
        Ok(warmed) => crate::DAEMON.log(format_args!(
            "hash tiles preloaded: {} MiB in {:.1} s",
            warmed.bytes >> 20,
            warmed.took.as_secs_f64()
        )),
        Err(e) => crate::DAEMON.log(format_args!("hash tiles not preloaded: {e}")),
    });
    if let Err(e) = started {
        crate::DAEMON.log(format_args!("hash tiles not preloaded: no thread: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_warmed_only_when_they_fit_in_half_the_memory() {
        let gib = 1u64 << 30;
        // 100M leaves: 6.4 GB of tiles.
        assert!(worth_warming(100_000_000, 23 * gib));
        assert!(!worth_warming(100_000_000, 8 * gib));
        assert!(worth_warming(1_000_000, gib / 4));
        assert!(!worth_warming(u64::MAX, u64::MAX));
    }
}
