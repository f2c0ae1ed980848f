//! Endpoints and 4-tuples, with the symmetric hash that shards flows.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use serde::Serialize;

/// One end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// A 4-tuple with its endpoints in a canonical order, so both directions give the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TupleKey {
    /// The lower endpoint.
    pub low: Endpoint,
    /// The higher endpoint.
    pub high: Endpoint,
}

impl TupleKey {
    /// The key of the connection between `a` and `b`, whichever sent the segment.
    pub fn new(a: Endpoint, b: Endpoint) -> TupleKey {
        if a <= b {
            TupleKey { low: a, high: b }
        } else {
            TupleKey { low: b, high: a }
        }
    }

    /// Which of `shards` shards owns this tuple: a hash of the whole 4-tuple, so that the
    /// connections between one SNAT address and one server spread over all shards.
    pub fn shard(&self, shards: usize) -> usize {
        let mut hasher = Fnv1a::default();
        self.hash(&mut hasher);
        (hasher.finish() % shards.max(1) as u64) as usize
    }
}

/// FNV-1a: fixed (not randomly seeded) so that sharding is the same on every run.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, port: u16) -> Endpoint {
        Endpoint {
            ip: s.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn key_and_shard_are_the_same_in_both_directions() {
        let (a, b) = (ep("10.0.0.1", 40000), ep("10.1.0.10", 80));
        assert_eq!(TupleKey::new(a, b), TupleKey::new(b, a));
        assert_eq!(TupleKey::new(a, b).shard(7), TupleKey::new(b, a).shard(7));
    }

    #[test]
    fn one_address_pair_spreads_over_shards() {
        let server = ep("10.1.0.10", 80);
        let mut used = [false; 4];
        for port in 40000..40064 {
            used[TupleKey::new(ep("10.0.0.1", port), server).shard(4)] = true;
        }
        assert_eq!(used, [true; 4]);
    }
}
