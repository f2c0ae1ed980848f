//! TCP sequence numbers with modular ordering (RFC 9293 section 3.4; Linux `before()`/`after()`).

use std::fmt;

/// A 32-bit sequence number; comparisons wrap around 2^32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// `self` comes strictly after `other` in sequence space (Linux `after(self, other)`).
    pub fn is_after(self, other: SeqNumber) -> bool {
        (other.0.wrapping_sub(self.0) as i32) < 0
    }

    /// `self` comes strictly before `other` (Linux `before(self, other)`).
    pub fn is_before(self, other: SeqNumber) -> bool {
        other.is_after(self)
    }

    /// `self + n`, wrapping.
    pub fn plus(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }

    /// The later of two sequence numbers in modular order.
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if other.is_after(self) { other } else { self }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `a` is a newer TCP timestamp than `b` (RFC 7323 section 5.2: modular comparison).
pub fn ts_newer(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_wraps_around_two_to_the_32() {
        assert!(SeqNumber(10).is_after(SeqNumber(5)));
        assert!(SeqNumber(5).is_before(SeqNumber(10)));
        assert!(SeqNumber(3).is_after(SeqNumber(u32::MAX - 3)));
        assert!(!SeqNumber(7).is_after(SeqNumber(7)));
        assert_eq!(SeqNumber(u32::MAX).plus(2), SeqNumber(1));
        assert_eq!(SeqNumber(u32::MAX - 1).max(SeqNumber(4)), SeqNumber(4));
        assert!(ts_newer(1, u32::MAX));
        assert!(!ts_newer(100, 100));
    }
}
