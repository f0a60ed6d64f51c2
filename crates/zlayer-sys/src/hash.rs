//! The one stable hash zlayer derives names and cache keys from.

/// 64-bit FNV-1a of `bytes`: stable across Rust versions and builds (unlike
/// `DefaultHasher`), so names derived from it (cgroups, interfaces, cache
/// files) stay the same from one zlayer version to the next.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_vectors() {
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
