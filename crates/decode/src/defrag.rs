//! Just enough IP reassembly to read a TCP header that is split across fragments.
//!
//! Only what TCP decoding needs is kept per datagram: the first [`TCP_MAX_HEADER_BYTES`] bytes
//! of its payload (a TCP header with every option fits), which of them arrived, and the
//! datagram's length once its last fragment is seen. The datagram is done when both are
//! known: the TCP header is then decoded with the payload length of the whole datagram, in
//! the frame that completed it. A fragment after the header's bytes adds nothing and is not
//! kept, so memory is bounded by the datagram count alone
//! ([`DefragLimits::max_pending_datagrams`] × about 150 bytes).

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::accounting::Reassembly;
use crate::segment::Vantage;

/// The longest TCP header: data offset 15 × 4 bytes (RFC 9293 section 3.1).
pub(crate) const TCP_MAX_HEADER_BYTES: usize = 60;
/// How often (in capture time) pending datagrams are checked for expiry.
const SWEEP_EVERY_NS: i64 = 1_000_000_000;

/// Bounds of the defragmenter's memory and patience.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DefragLimits {
    /// Datagrams kept waiting for fragments at most; fragments of further datagrams are
    /// dropped (and counted) until some complete or expire.
    pub max_pending_datagrams: usize,
    /// A datagram whose fragments have not all come this long (capture time) after its first
    /// one is given up. Linux waits `net.ipv4.ipfrag_time` = 30 s.
    pub timeout_ns: i64,
}

impl Default for DefragLimits {
    fn default() -> DefragLimits {
        DefragLimits {
            max_pending_datagrams: 4096,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// A fragmented datagram: its addresses and identification (RFC 791 section 3.2, RFC 8200
/// section 4.5), and where it was seen, so that the same addresses inside two tunnels are
/// not mixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DatagramKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub identification: u32,
    pub vantage: Vantage,
}

/// One fragment of a datagram that carries TCP.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fragment<'a> {
    /// Where its payload starts in the datagram's payload, in bytes.
    pub offset: usize,
    /// Its payload as captured (a snaplen may have cut it).
    pub captured: &'a [u8],
    /// Its payload length from the IP length fields.
    pub len: usize,
    /// More fragments follow (MF, M flag).
    pub more: bool,
}

/// A datagram whose TCP header is whole.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reassembled {
    header: [u8; TCP_MAX_HEADER_BYTES],
    header_len: usize,
    /// The datagram's payload length (the TCP segment's length).
    pub datagram_len: usize,
}

impl Reassembled {
    /// The TCP header's bytes (the first `datagram_len` bytes when the datagram is shorter
    /// than its header claims).
    pub fn tcp_header(&self) -> &[u8] {
        &self.header[..self.header_len]
    }
}

struct Pending {
    first_seen_ns: i64,
    header: [u8; TCP_MAX_HEADER_BYTES],
    /// Bit i set: byte i of `header` arrived.
    present: u64,
    datagram_len: Option<usize>,
}

/// Bits `start..end` (end at most 60).
fn span(start: usize, end: usize) -> u64 {
    if end <= start {
        0
    } else {
        ((1u64 << (end - start)) - 1) << start
    }
}

impl Pending {
    /// Bytes of the header this fragment holds, first copy kept (a duplicate fragment carries
    /// the same bytes; RFC 5722 would drop overlapping IPv6 fragments, which are attacks, not
    /// something a capture of them needs to get right).
    fn add(&mut self, fragment: &Fragment<'_>) {
        if fragment.offset < TCP_MAX_HEADER_BYTES {
            let end = (fragment.offset + fragment.captured.len()).min(TCP_MAX_HEADER_BYTES);
            for at in fragment.offset..end {
                if self.present & (1 << at) == 0 {
                    self.header[at] = fragment.captured[at - fragment.offset];
                }
            }
            self.present |= span(fragment.offset, end);
        }
        if !fragment.more && self.datagram_len.is_none() {
            self.datagram_len = Some(fragment.offset + fragment.len);
        }
    }

    /// The TCP header, when the datagram's length and every byte of its header are known.
    fn complete(&self) -> Option<Reassembled> {
        let datagram_len = self.datagram_len?;
        // The base header first, to read the data offset (RFC 9293 section 3.1).
        let base = datagram_len.min(20);
        if self.present & span(0, base) != span(0, base) {
            return None;
        }
        let header_len = if datagram_len < 20 {
            datagram_len
        } else {
            (usize::from(self.header[12] >> 4) * 4)
                .clamp(20, TCP_MAX_HEADER_BYTES)
                .min(datagram_len)
        };
        (self.present & span(0, header_len) == span(0, header_len)).then_some(Reassembled {
            header: self.header,
            header_len,
            datagram_len,
        })
    }
}

/// Pending datagrams, bounded by [`DefragLimits`].
pub(crate) struct Defragmenter {
    limits: DefragLimits,
    pending: HashMap<DatagramKey, Pending>,
    next_sweep_ns: i64,
    counters: Reassembly,
}

impl Defragmenter {
    pub fn new(limits: DefragLimits) -> Defragmenter {
        Defragmenter {
            limits,
            pending: HashMap::new(),
            next_sweep_ns: i64::MIN,
            counters: Reassembly::default(),
        }
    }

    pub fn counters(&self) -> Reassembly {
        self.counters
    }

    /// Datagrams waiting for fragments.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes one fragment seen at `now_ns`; gives the TCP header when this fragment completes
    /// it.
    pub fn add(
        &mut self,
        key: DatagramKey,
        now_ns: i64,
        fragment: &Fragment<'_>,
    ) -> Option<Reassembled> {
        if now_ns >= self.next_sweep_ns {
            self.expire(now_ns);
        }
        // A middle fragment past the header holds nothing the TCP decoding needs.
        if fragment.offset >= TCP_MAX_HEADER_BYTES && fragment.more {
            return None;
        }
        if !self.pending.contains_key(&key)
            && self.pending.len() >= self.limits.max_pending_datagrams
        {
            self.expire(now_ns);
            if self.pending.len() >= self.limits.max_pending_datagrams {
                self.counters.dropped_over_cap += 1;
                return None;
            }
        }
        let entry = self.pending.entry(key).or_insert(Pending {
            first_seen_ns: now_ns,
            header: [0; TCP_MAX_HEADER_BYTES],
            present: 0,
            datagram_len: None,
        });
        entry.add(fragment);
        let done = entry.complete()?;
        self.pending.remove(&key);
        self.counters.reassembled += 1;
        Some(done)
    }

    /// Gives up the datagrams that have waited longer than the timeout.
    fn expire(&mut self, now_ns: i64) {
        let timeout_ns = self.limits.timeout_ns;
        let before = self.pending.len();
        self.pending
            .retain(|_, datagram| now_ns.saturating_sub(datagram.first_seen_ns) <= timeout_ns);
        self.counters.expired += (before - self.pending.len()) as u64;
        self.next_sweep_ns = now_ns.saturating_add(SWEEP_EVERY_NS);
    }

    /// The input has ended: every datagram still waiting is given up.
    pub fn finish(&mut self) {
        self.counters.expired += self.pending.len() as u64;
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(identification: u32) -> DatagramKey {
        DatagramKey {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            identification,
            vantage: Vantage::default(),
        }
    }

    /// A 32-byte TCP header (data offset 8) followed by 8 payload bytes.
    fn datagram() -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..40).collect();
        bytes[12] = 8 << 4;
        bytes
    }

    fn fragment(bytes: &[u8], start: usize, end: usize, last: bool) -> Fragment<'_> {
        Fragment {
            offset: start,
            captured: &bytes[start..end],
            len: end - start,
            more: !last,
        }
    }

    #[test]
    fn header_split_in_two_completes_with_the_last_fragment_in_either_order() {
        let bytes = datagram();
        for order in [[0, 1], [1, 0]] {
            let mut defrag = Defragmenter::new(DefragLimits::default());
            let parts = [fragment(&bytes, 0, 8, false), fragment(&bytes, 8, 40, true)];
            assert!(defrag.add(key(1), 0, &parts[order[0]]).is_none());
            let done = defrag.add(key(1), 1, &parts[order[1]]).expect("complete");
            assert_eq!(done.tcp_header(), &bytes[..32]);
            assert_eq!(done.datagram_len, 40);
            assert_eq!(defrag.pending(), 0);
            assert_eq!(defrag.counters().reassembled, 1);
        }
    }

    #[test]
    fn a_whole_header_still_waits_for_the_datagram_length() {
        let bytes = datagram();
        let mut defrag = Defragmenter::new(DefragLimits::default());
        assert!(
            defrag
                .add(key(2), 0, &fragment(&bytes, 0, 32, false))
                .is_none()
        );
        let done = defrag
            .add(key(2), 0, &fragment(&bytes, 32, 40, true))
            .unwrap();
        assert_eq!(done.datagram_len, 40);
    }

    #[test]
    fn middle_fragments_past_the_header_are_not_kept() {
        let bytes = vec![0u8; 200];
        let mut defrag = Defragmenter::new(DefragLimits::default());
        assert!(
            defrag
                .add(key(3), 0, &fragment(&bytes, 64, 128, false))
                .is_none()
        );
        assert_eq!(defrag.pending(), 0);
    }

    #[test]
    fn datagrams_expire_by_capture_time_and_at_the_end() {
        let bytes = datagram();
        let limits = DefragLimits {
            max_pending_datagrams: 10,
            timeout_ns: 30_000_000_000,
        };
        let mut defrag = Defragmenter::new(limits);
        defrag.add(key(4), 0, &fragment(&bytes, 0, 8, false));
        defrag.add(key(5), 20_000_000_000, &fragment(&bytes, 0, 8, false));
        // 31 s after the first: it expires, the second (11 s old) stays.
        assert!(
            defrag
                .add(key(4), 31_000_000_000, &fragment(&bytes, 8, 40, true))
                .is_none()
        );
        assert_eq!(defrag.counters().expired, 1);
        // key(4)'s last fragment opened a new datagram, which waits with key(5).
        assert_eq!(defrag.pending(), 2);
        defrag.finish();
        assert_eq!(defrag.counters().expired, 3);
        assert_eq!(defrag.pending(), 0);
    }

    #[test]
    fn fragments_beyond_the_cap_are_dropped_and_counted() {
        let bytes = datagram();
        let limits = DefragLimits {
            max_pending_datagrams: 2,
            timeout_ns: 30_000_000_000,
        };
        let mut defrag = Defragmenter::new(limits);
        for id in 0..5 {
            defrag.add(key(id), 0, &fragment(&bytes, 0, 8, false));
        }
        assert_eq!(defrag.pending(), 2);
        assert_eq!(defrag.counters().dropped_over_cap, 3);
        // A datagram already pending still completes.
        assert!(
            defrag
                .add(key(1), 0, &fragment(&bytes, 8, 40, true))
                .is_some()
        );
    }

    #[test]
    fn a_datagram_shorter_than_its_data_offset_completes_with_what_it_has() {
        let bytes = datagram();
        let mut defrag = Defragmenter::new(DefragLimits::default());
        defrag.add(key(6), 0, &fragment(&bytes, 0, 16, false));
        let done = defrag
            .add(key(6), 0, &fragment(&bytes, 16, 24, true))
            .unwrap();
        assert_eq!(done.tcp_header().len(), 24);
        assert_eq!(done.datagram_len, 24);
    }
}
