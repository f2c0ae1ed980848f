//! Endpoints and 4-tuples, with the symmetric hash that shards flows.

use std::fmt;
use std::hash::Hash;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use twsleuth_decode::{TcpSegment, TunnelKind, Vantage};

use crate::config::TrackerConfig;

/// One end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

/// A segment's sender and receiver.
pub fn endpoints(seg: &twsleuth_decode::TcpSegment) -> (Endpoint, Endpoint) {
    (
        Endpoint {
            ip: seg.src,
            port: seg.src_port,
        },
        Endpoint {
            ip: seg.dst,
            port: seg.dst_port,
        },
    )
}

/// An endpoint packed for fast hashing and comparison: IPv4 addresses as their 32 bits,
/// told apart from IPv6 by `family`. The address as two words rather than a `u128`, whose
/// 16-byte alignment would pad a key to 64 bytes (48 this way): the tuple table is the
/// tracker's most used memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct PackedEndpoint {
    ip: [u64; 2],
    port: u16,
    family: u8,
}

impl From<Endpoint> for PackedEndpoint {
    fn from(e: Endpoint) -> Self {
        let (bits, family) = match e.ip {
            IpAddr::V4(ip) => (u128::from(ip.to_bits()), 4),
            IpAddr::V6(ip) => (ip.to_bits(), 6),
        };
        PackedEndpoint {
            ip: [(bits >> 64) as u64, bits as u64],
            port: e.port,
            family,
        }
    }
}

impl From<PackedEndpoint> for Endpoint {
    fn from(e: PackedEndpoint) -> Self {
        let bits = (u128::from(e.ip[0]) << 64) | u128::from(e.ip[1]);
        let ip = if e.family == 4 {
            IpAddr::V4(std::net::Ipv4Addr::from_bits(bits as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from_bits(bits))
        };
        Endpoint { ip, port: e.port }
    }
}

/// Is `a` the first of the two endpoints in [`TupleKey`]'s canonical order? Lets a compact
/// record remember which endpoint was which with one bit.
pub(crate) fn comes_first(a: Endpoint, b: Endpoint) -> bool {
    PackedEndpoint::from(a) <= PackedEndpoint::from(b)
}

/// Where a connection was seen, as far as the flow key tells places apart: the capture point
/// (inputs that saw the same traffic at different places, such as a balancer's and a
/// server's capture) and the segments' VLAN tags and tunnel (as `--split-by` keeps them).
/// Each view of a connection is followed on its own, with its own packets, and the views of
/// one connection are joined afterwards ([`ShardedTracker`](crate::ShardedTracker)).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct View {
    /// The capture point (0 for the first, and for every input when there is one).
    pub point: u8,
    /// VLAN tags and tunnel, with the tunnel ids that differ by direction left out
    /// ([`Vantage::symmetric`]) and what `--split-by` does not keep set to 0.
    pub vantage: Vantage,
}

impl View {
    /// The view of `seg` under `config`.
    #[inline]
    pub(crate) fn of(seg: &TcpSegment, config: &TrackerConfig) -> View {
        let point = config
            .capture_points
            .get(usize::from(seg.frame.file_index))
            .copied()
            .unwrap_or(0);
        let vantage = seg.vantage.symmetric();
        let (vlans, tunnel) = (config.split_by.vlan, config.split_by.tunnel);
        View {
            point,
            vantage: Vantage {
                outer_vlan: if vlans { vantage.outer_vlan } else { 0 },
                inner_vlan: if vlans { vantage.inner_vlan } else { 0 },
                tunnel: if tunnel {
                    vantage.tunnel
                } else {
                    TunnelKind::None
                },
                tunnel_id: if tunnel { vantage.tunnel_id } else { 0 },
            },
        }
    }
}

/// A 4-tuple with its endpoints in a canonical order, so both directions give the same key,
/// and the [`View`] it was seen in. Flat, so that the view fits where padding was: 48 bytes,
/// as the 4-tuple alone took (the tuple table is the tracker's most used memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TupleKey {
    low_ip: [u64; 2],
    high_ip: [u64; 2],
    low_port: u16,
    high_port: u16,
    family: u8,
    point: u8,
    tunnel: TunnelKind,
    outer_vlan: u16,
    inner_vlan: u16,
    tunnel_id: u32,
}

impl Hash for TupleKey {
    /// Six words rather than ten fields: the table hashes a key for every segment, and with
    /// FxHash each `write` is a multiply.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let small = u64::from(self.low_port)
            | u64::from(self.high_port) << 16
            | u64::from(self.outer_vlan) << 32
            | u64::from(self.inner_vlan) << 48;
        let rest = u64::from(self.tunnel_id)
            | u64::from(self.family) << 32
            | u64::from(self.point) << 40
            | u64::from(self.tunnel as u8) << 48;
        for word in [
            self.low_ip[0],
            self.low_ip[1],
            self.high_ip[0],
            self.high_ip[1],
            small,
            rest,
        ] {
            state.write_u64(word);
        }
    }
}

impl TupleKey {
    /// The key of the connection between `a` and `b`, whichever sent the segment, in the
    /// default view.
    pub fn new(a: Endpoint, b: Endpoint) -> TupleKey {
        TupleKey::in_view(a, b, View::default())
    }

    /// The key of the connection between `a` and `b` in `view`.
    #[inline]
    pub fn in_view(a: Endpoint, b: Endpoint, view: View) -> TupleKey {
        let (a, b) = (PackedEndpoint::from(a), PackedEndpoint::from(b));
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        TupleKey {
            low_ip: low.ip,
            high_ip: high.ip,
            low_port: low.port,
            high_port: high.port,
            // Both ends of a TCP segment are of one family.
            family: low.family,
            point: view.point,
            tunnel: view.vantage.tunnel,
            outer_vlan: view.vantage.outer_vlan,
            inner_vlan: view.vantage.inner_vlan,
            tunnel_id: view.vantage.tunnel_id,
        }
    }

    /// The two endpoints, in the key's canonical order.
    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        let endpoint = |ip, port| {
            Endpoint::from(PackedEndpoint {
                ip,
                port,
                family: self.family,
            })
        };
        (
            endpoint(self.low_ip, self.low_port),
            endpoint(self.high_ip, self.high_port),
        )
    }

    /// The view the key belongs to.
    pub fn view(&self) -> View {
        View {
            point: self.point,
            vantage: Vantage {
                outer_vlan: self.outer_vlan,
                inner_vlan: self.inner_vlan,
                tunnel: self.tunnel,
                tunnel_id: self.tunnel_id,
            },
        }
    }

    /// The same 4-tuple in the default view: what the views of one connection share.
    pub fn without_view(&self) -> TupleKey {
        let (low, high) = self.endpoints();
        TupleKey::new(low, high)
    }

    /// Which of `shards` shards owns the tuple of a segment from `src` to `dst`: a hash of the
    /// whole 4-tuple, symmetric (XOR of both ends), so that both directions land together
    /// and the connections between one SNAT address and one server spread over all shards.
    /// Fixed constants (no random seed): sharding is the same on every run.
    pub fn shard_of(src: Endpoint, dst: Endpoint, shards: usize) -> usize {
        let fold = |e: Endpoint| -> u64 {
            let ip = match e.ip {
                IpAddr::V4(ip) => u64::from(ip.to_bits()),
                IpAddr::V6(ip) => {
                    let bits = ip.to_bits();
                    (bits >> 64) as u64 ^ bits as u64
                }
            };
            ip ^ u64::from(e.port).rotate_left(40)
        };
        // murmur3's 64-bit finaliser spreads the XOR over all bits before the modulo.
        let mut h = fold(src) ^ fold(dst);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        let shards = shards.max(1) as u64;
        // The same shard as `h % shards`, without a division for every segment when the
        // count is a power of two, as it usually is.
        let shard = if shards.is_power_of_two() {
            h & (shards - 1)
        } else {
            h % shards
        };
        shard as usize
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
    fn a_key_is_48_bytes() {
        assert_eq!(size_of::<TupleKey>(), 48);
    }

    #[test]
    fn a_key_keeps_its_view_apart_and_gives_it_back() {
        let (a, b) = (ep("10.0.0.1", 40000), ep("10.1.0.10", 80));
        let view = View {
            point: 1,
            vantage: Vantage {
                outer_vlan: 20,
                inner_vlan: 7,
                tunnel: TunnelKind::Vxlan,
                tunnel_id: 5001,
            },
        };
        let key = TupleKey::in_view(a, b, view);
        assert_eq!(key, TupleKey::in_view(b, a, view));
        assert_ne!(key, TupleKey::new(a, b));
        assert_eq!(key.view(), view);
        assert_eq!(key.without_view(), TupleKey::new(a, b));
        assert_eq!(key.endpoints(), TupleKey::new(a, b).endpoints());
    }

    #[test]
    fn a_key_gives_back_its_endpoints() {
        for (a, b) in [
            (ep("10.0.0.1", 40000), ep("10.1.0.10", 80)),
            (ep("fd00::1", 443), ep("fd00::2", 50000)),
        ] {
            let (low, high) = TupleKey::new(a, b).endpoints();
            assert_eq!([low, high], if comes_first(a, b) { [a, b] } else { [b, a] });
        }
    }

    #[test]
    fn key_and_shard_are_the_same_in_both_directions() {
        let (a, b) = (ep("10.0.0.1", 40000), ep("10.1.0.10", 80));
        assert_eq!(TupleKey::new(a, b), TupleKey::new(b, a));
        assert_eq!(TupleKey::shard_of(a, b, 7), TupleKey::shard_of(b, a, 7));
    }

    #[test]
    fn one_address_pair_spreads_over_shards() {
        let server = ep("10.1.0.10", 80);
        let mut used = [false; 4];
        for port in 40000..40064 {
            used[TupleKey::shard_of(ep("10.0.0.1", port), server, 4)] = true;
        }
        assert_eq!(used, [true; 4]);
    }
}
