//! Masking keys for the client's frames.
//!
//! RFC 6455 §5.3 asks for keys an attacker cannot predict (a predictable mask lets a page
//! smuggle chosen bytes past a confused proxy), so they come from the system's CSPRNG. A
//! `getrandom` call per frame would cost more than the frame, so keys are drawn 64 at a time.

use ring::rand::{SecureRandom, SystemRandom};

/// Keys fetched per refill.
const BATCH: usize = 64;

/// Fills `buf` from the system's random source.
pub(crate) fn fill_random(buf: &mut [u8]) {
    // The system source only fails where no entropy source exists at all (no getrandom(2)
    // and no /dev/urandom); nothing sensible can be sent without one.
    SystemRandom::new()
        .fill(buf)
        .expect("the system random source is unavailable");
}

/// A supply of masking keys.
pub(crate) struct MaskKeys {
    keys: [[u8; 4]; BATCH],
    next: usize,
}

impl MaskKeys {
    pub(crate) fn new() -> MaskKeys {
        MaskKeys {
            keys: [[0; 4]; BATCH],
            next: BATCH,
        }
    }

    /// The next key, refilling the batch when it runs out.
    pub(crate) fn next_key(&mut self) -> [u8; 4] {
        if self.next == BATCH {
            fill_random(self.keys.as_flattened_mut());
            self.next = 0;
        }
        let key = self.keys[self.next];
        self.next += 1;
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_vary_across_refills() {
        let mut keys = MaskKeys::new();
        let all: Vec<[u8; 4]> = (0..3 * BATCH).map(|_| keys.next_key()).collect();
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        // 192 draws of 32 random bits: a repeat is a ~4e-6 event, all-zero keys impossible.
        assert!(distinct.len() >= all.len() - 1);
    }
}
