//! Memory settings for an embedded cluster, from the memory the machine (or the container's
//! cgroup) has. PostgreSQL's defaults suit a small machine: with 128 MB of shared buffers, the
//! primary keys of large projection tables no longer fit, and each insert at a random key
//! reads its leaf page back from the OS and writes another one out (a rebuild over 1,000,000
//! events spent a sixth of its CPU in `btinsert`, nearly all of it copying pages in and out).

/// A quarter of the memory, within these bounds (PostgreSQL's own default is the lower one).
const SHARED_BUFFERS_MIB: (u64, u64) = (128, 2048);

/// WAL between checkpoints: past PostgreSQL's 1 GB default, bulk loads of a large log do not
/// checkpoint (and write whole pages to the WAL again after each) every few seconds.
const MAX_WAL_SIZE: &str = "4GB";

/// The settings every embedded cluster starts with (a caller's own settings come after them,
/// and so win).
pub fn settings() -> Vec<(String, String)> {
    let memory_mib = memory_bytes().map_or(0, |bytes| bytes >> 20);
    vec![
        (
            "shared_buffers".into(),
            format!("{}MB", shared_buffers_mib(memory_mib)),
        ),
        ("max_wal_size".into(), MAX_WAL_SIZE.into()),
    ]
}

fn shared_buffers_mib(memory_mib: u64) -> u64 {
    (memory_mib / 4).clamp(SHARED_BUFFERS_MIB.0, SHARED_BUFFERS_MIB.1)
}

/// The machine's memory, or the cgroup's limit when it has a lower one (Linux).
fn memory_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| mem_total(&meminfo));
    let limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match (total, limit) {
        (Some(total), Some(limit)) => Some(total.min(limit)),
        (total, limit) => total.or(limit),
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_of_the_memory_within_bounds() {
        assert_eq!(shared_buffers_mib(0), 128);
        assert_eq!(shared_buffers_mib(256), 128);
        assert_eq!(shared_buffers_mib(2048), 512);
        assert_eq!(shared_buffers_mib(24 * 1024), 2048);
    }

    #[test]
    fn mem_total_is_read_in_kib() {
        let meminfo = "MemTotal:       24567080 kB\nMemFree:         1234 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_567_080 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }
}
