//! Every frame ends in exactly one counter (DESIGN.md section 7).

use serde::Serialize;

/// The counter a frame ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameClass {
    /// A TCP segment, decoded.
    Tcp,
    /// IP, but another protocol (UDP, ICMP, …).
    OtherIp,
    /// Not IP (ARP, LLDP, STP, …) or a link type twsleuth does not decode.
    NonIp,
    /// Headers inconsistent with themselves or with the frame.
    Malformed,
    /// Cut by the snaplen before the TCP header was complete.
    Truncated,
    /// A non-first IP fragment (IPv4 or IPv6), which carries no TCP header.
    Fragment,
}

/// Frame counts by class. The classes add up to `frames`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Frames read.
    pub frames: u64,
    /// Frames decoded as TCP segments.
    pub tcp_segments: u64,
    /// IP frames of another protocol.
    pub other_ip: u64,
    /// Non-IP frames.
    pub non_ip: u64,
    /// Malformed frames.
    pub malformed: u64,
    /// Snaplen-truncated frames whose TCP header could not be read.
    pub truncated: u64,
    /// Non-first IP fragments.
    pub fragments: u64,
}

impl Accounting {
    /// Counts one frame in its class.
    pub fn count(&mut self, class: FrameClass) {
        self.frames += 1;
        *match class {
            FrameClass::Tcp => &mut self.tcp_segments,
            FrameClass::OtherIp => &mut self.other_ip,
            FrameClass::NonIp => &mut self.non_ip,
            FrameClass::Malformed => &mut self.malformed,
            FrameClass::Truncated => &mut self.truncated,
            FrameClass::Fragment => &mut self.fragments,
        } += 1;
    }

    /// Frames that are not TCP segments, whatever the reason.
    pub fn non_tcp(&self) -> u64 {
        self.other_ip + self.non_ip + self.malformed + self.truncated + self.fragments
    }

    /// True when the classes add up to the frame count.
    pub fn is_closed(&self) -> bool {
        self.tcp_segments + self.non_tcp() == self.frames
    }

    /// Adds another accounting (of another shard or input) to this one.
    pub fn merge(&mut self, other: &Accounting) {
        self.frames += other.frames;
        self.tcp_segments += other.tcp_segments;
        self.other_ip += other.other_ip;
        self.non_ip += other.non_ip;
        self.malformed += other.malformed;
        self.truncated += other.truncated;
        self.fragments += other.fragments;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_counts_once_and_closes() {
        let mut accounting = Accounting::default();
        for class in [
            FrameClass::Tcp,
            FrameClass::OtherIp,
            FrameClass::NonIp,
            FrameClass::Malformed,
            FrameClass::Truncated,
            FrameClass::Fragment,
        ] {
            accounting.count(class);
        }
        assert_eq!(accounting.frames, 6);
        assert_eq!(accounting.non_tcp(), 5);
        assert!(accounting.is_closed());
    }
}
