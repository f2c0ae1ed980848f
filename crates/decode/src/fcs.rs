//! The Ethernet frame check sequence (IEEE 802.3 clause 3.2.9): CRC-32, reflected, polynomial
//! 0x04C11DB7, sent least significant byte first; the same CRC as zlib's `crc32`.

/// The byte-at-a-time table of the reflected polynomial 0xEDB88320, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        (crc >> 8) ^ TABLE[usize::from((crc as u8) ^ b)]
    })
}

/// True when the last 4 bytes of an Ethernet frame (header included) are its FCS.
pub(crate) fn ends_with_fcs(frame: &[u8]) -> bool {
    // An Ethernet header, then the 4 bytes.
    if frame.len() < 14 + 4 {
        return false;
    }
    let (body, fcs) = frame.split_at(frame.len() - 4);
    crc32(body).to_le_bytes() == fcs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        // The CRC-32 check value of "123456789" (the Rocksoft catalogue's CRC-32).
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let mut frame = vec![0x5a; 60];
        let fcs = crc32(&frame).to_le_bytes();
        frame.extend_from_slice(&fcs);
        assert!(ends_with_fcs(&frame));
        frame[3] ^= 1;
        assert!(!ends_with_fcs(&frame));
    }
}
