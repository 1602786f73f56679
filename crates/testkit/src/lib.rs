//! Test support shared by dvault's crates: real servers started on 127.0.0.1 in a temporary
//! folder and torn down when dropped. No mocks: tests talk to the real thing.
//!
//! - [`Garage`]: a single-node Garage (a real S3-compatible object store) for S3 repositories
//!   and Discourse's S3 backup bucket.
//! - [`ping_server`]: an HTTP listener that records monitoring pings.
//! - [`noise`]: incompressible bytes for uploads that must not deduplicate or compress.

pub mod garage;
pub mod ping;

pub use garage::{Garage, S3Key};
pub use ping::{ping_server, PingServer};

/// A free TCP port on 127.0.0.1 (the listener is closed again, so another process could take
/// it first; good enough for tests that start their server right away).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// Deterministic pseudo-random bytes (xorshift), so fixtures are the same on every run:
/// incompressible, and different for different seeds.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
