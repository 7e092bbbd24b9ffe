//! Byte-level mutants of valid inputs, for the differential tests that keep
//! each typed fast path (`mcp::fast_path`, `http::body`) in step with the
//! general path it shortcuts.

use rand::{Rng, SeedableRng};

/// `count` mutants of `seeds` (picked at random): one to three bytes dropped,
/// doubled, or swapped for JSON punctuation, digits and letters of
/// `true`/`false`/`null`. Deterministic for a given `rng_seed`.
pub(crate) fn mutants(
    seeds: &[&str],
    rng_seed: u64,
    count: usize,
) -> impl Iterator<Item = Vec<u8>> {
    const ALPHABET: &[u8] = br#"{}[]":,\ 0123456789.eE-+truefalsnlxyz_"#;
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(rng_seed);
    (0..count).map(move |_| {
        let mut bytes = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(1..4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..3) {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, bytes[at]),
                _ => bytes[at] = ALPHABET[rng.random_range(0..ALPHABET.len())],
            }
        }
        bytes
    })
}
