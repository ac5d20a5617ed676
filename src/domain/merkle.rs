//! Certificate Transparency style Merkle trees over the ledger's event hashes.
//!
//! Why this exists: a checkpoint commits to the Merkle root of every event hash in feed
//! order. With that root published (and the tree size it covers), anyone holding a
//! single scan's events can check that each of them is in the ledger with an inclusion
//! proof of O(log n) hashes, without seeing the rest of the feed; and a later checkpoint
//! can be shown to extend an earlier one (nothing rewritten, only appended) with a
//! consistency proof of O(log n) hashes.
//!
//! This module follows RFC 9162 §2.1 exactly (the same tree as RFC 6962), so the logic
//! of third-party Certificate Transparency tooling (transparency-dev/merkle,
//! certificate-transparency-go, ...) applies unchanged to our roots and proofs:
//!
//! - leaf: `MTH({d}) = SHA-256(0x00 || d)` ([`leaf_hash`]);
//! - interior node: `SHA-256(0x01 || left || right)` ([`node_hash`]);
//! - empty tree: `MTH({}) = SHA-256("")` ([`empty_root`]);
//! - a tree of `n > 1` leaves splits at `k`, the largest power of two smaller than `n`.
//!
//! In our use a leaf's data `d` is an event's 32-byte hash (the raw bytes, not hex).
//! Every function here except [`leaf_hash`] takes leaf *hashes*: callers hash each event
//! hash once with [`leaf_hash`] and pass the results. Proofs are lists of hashes in the
//! order of the RFC (the sibling nearest the leaf first).
//!
//! Pure and self-contained: SHA-256 from `sha2`, nothing else of this crate.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a root.
pub type Hash = [u8; 32];

/// Domain separation prefix of a leaf hash (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain separation prefix of an interior node hash (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// `MTH({d}) = SHA-256(0x00 || d)`: the hash of a leaf whose data is `data` (for us, an
/// event's 32-byte hash).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `MTH({}) = SHA-256("")`: the root of the empty tree
/// (`e3b0c442...7852b855`).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The Merkle tree head of `leaves` (already leaf hashes, see [`leaf_hash`]).
///
/// O(n) hashes, no allocation: it streams the slice through a [`RootBuilder`].
pub fn root(leaves: &[Hash]) -> Hash {
    let mut builder = RootBuilder::new();
    for leaf in leaves {
        builder.push(*leaf);
    }
    builder.root()
}

/// Computes a Merkle root incrementally, one leaf hash at a time, so that a feed of any
/// length can be streamed without holding it.
///
/// It keeps the roots of the perfect subtrees the tree so far decomposes into (one per
/// set bit of the size) in a fixed array of 64 hashes: 2 KiB whatever the size, no
/// allocation, one [`node_hash`] per push amortized. [`RootBuilder::root`] folds them in
/// O(log n) hashes without consuming the builder, so a checkpoint can be taken at any
/// size and pushing can go on.
#[derive(Clone)]
pub struct RootBuilder {
    /// Number of leaves pushed.
    size: u64,
    /// `subtrees[level]` is the root of the perfect subtree of `2^level` leaves when bit
    /// `level` of `size` is set; meaningless otherwise.
    subtrees: [Hash; 64],
}

impl RootBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            size: 0,
            subtrees: [[0; 32]; 64],
        }
    }

    /// Appends one leaf hash (see [`leaf_hash`]).
    ///
    /// # Panics
    /// After `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) {
        let new_size = self.size.checked_add(1).expect("Merkle tree size overflow");
        let mut carry = leaf;
        let mut level = 0;
        // Binary increment: each set low bit is a perfect subtree the new one merges with.
        while self.size & (1 << level) != 0 {
            carry = node_hash(&self.subtrees[level], &carry);
            level += 1;
        }
        self.subtrees[level] = carry;
        self.size = new_size;
    }

    /// The number of leaves pushed so far (the tree size).
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether no leaf was pushed.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The Merkle tree head of the leaves pushed so far ([`empty_root`] if none).
    pub fn root(&self) -> Hash {
        if self.size == 0 {
            return empty_root();
        }
        // Fold the perfect subtrees from the smallest (rightmost) to the largest: this is
        // the RFC's recursion, whose split k always isolates the largest one on the left.
        let mut level = self.size.trailing_zeros() as usize;
        let mut acc = self.subtrees[level];
        level += 1;
        while level < 64 {
            if self.size & (1 << level) != 0 {
                acc = node_hash(&self.subtrees[level], &acc);
            }
            level += 1;
        }
        acc
    }
}

impl Default for RootBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RootBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootBuilder")
            .field("len", &self.size)
            .field("root", &to_hex(&self.root()))
            .finish()
    }
}

/// `k`, the largest power of two smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The inclusion proof (audit path, RFC 9162 §2.1.3.1 `PATH(m, D_n)`) of the leaf at
/// `index` in the tree of `leaves` (leaf hashes): the siblings from the leaf up to the
/// root, nearest first. Empty for a tree of one leaf.
///
/// O(n) hashes (every subtree hash on the path is computed once), O(log n) memory.
///
/// # Panics
/// If `index >= leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    assert!(
        index < leaves.len(),
        "inclusion proof of leaf {index} in a tree of {} leaves",
        leaves.len()
    );
    let mut proof = Vec::new();
    // Walk down from the root, narrowing `tree` to the subtree holding `m`; the RFC lists
    // the siblings bottom-up, so they are collected top-down and reversed.
    let mut tree = leaves;
    let mut m = index;
    while tree.len() > 1 {
        let k = split(tree.len());
        if m < k {
            proof.push(root(&tree[k..]));
            tree = &tree[..k];
        } else {
            proof.push(root(&tree[..k]));
            tree = &tree[k..];
            m -= k;
        }
    }
    proof.reverse();
    proof
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `tree_size` leaves
/// whose root is `root`, with the inclusion `proof`: the algorithm of RFC 9162 §2.1.3.2,
/// step by step.
///
/// The tree size is authenticated by `root` (a checkpoint publishes both together), not
/// by the proof: pass the size and root of the same checkpoint.
#[must_use]
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    // 1. leaf_index >= tree_size fails.
    if index >= tree_size {
        return false;
    }
    // 2. fn = leaf_index, sn = tree_size - 1.
    let mut f_n = index;
    let mut s_n = tree_size - 1;
    // 3. r = hash.
    let mut r = *leaf;
    // 4. For each p in inclusion_path:
    for p in proof {
        // a. sn == 0: the path is too long.
        if s_n == 0 {
            return false;
        }
        // b. LSB(fn) set, or fn == sn: p is a left sibling.
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            // ii. Skip the levels where this node has no right sibling.
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            // Otherwise p is a right sibling.
            r = node_hash(&r, p);
        }
        // c. Up one level.
        f_n >>= 1;
        s_n >>= 1;
    }
    // 5. sn == 0 (the path reached the root) and r == root_hash.
    s_n == 0 && r == *root
}

/// The consistency proof (RFC 9162 §2.1.4.1 `PROOF(m, D_n)`) that the tree of the first
/// `old_size` of `leaves` (leaf hashes) is a prefix of the tree of all of them.
///
/// The RFC defines it for `0 < old_size < leaves.len()`; for `old_size == 0` or
/// `old_size == leaves.len()` there is nothing to prove and the proof is empty (which
/// [`verify_consistency`] accepts, see there).
///
/// O(n) hashes, O(log n) memory.
///
/// # Panics
/// If `old_size > leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Vec<Hash> {
    assert!(
        old_size <= leaves.len(),
        "consistency proof from size {old_size} to a tree of {} leaves",
        leaves.len()
    );
    let mut proof = Vec::new();
    if old_size == 0 || old_size == leaves.len() {
        return proof;
    }
    // SUBPROOF(m, D_n, b), unrolled top-down like `inclusion_proof`: `tree` is the current
    // D_n, `m` the size of its prefix that is the old tree, `whole` is b (the subtree is
    // still a left edge of the whole tree, whose old root the verifier already has).
    let mut tree = leaves;
    let mut m = old_size;
    let mut whole = true;
    loop {
        if m == tree.len() {
            // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}.
            if !whole {
                proof.push(root(tree));
            }
            break;
        }
        let k = split(tree.len());
        if m <= k {
            proof.push(root(&tree[k..]));
            tree = &tree[..k];
        } else {
            proof.push(root(&tree[..k]));
            tree = &tree[k..];
            m -= k;
            whole = false;
        }
    }
    proof.reverse();
    proof
}

/// Verifies with `proof` that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`.
///
/// For `0 < old_size < new_size` this is the algorithm of RFC 9162 §2.1.4.2, step by
/// step. The RFC leaves the other cases out; here, failing closed:
/// - `old_size > new_size` fails;
/// - `old_size == 0` requires `old_root` to be [`empty_root`] and the proof to be empty
///   (the empty tree is a prefix of every tree);
/// - `old_size == new_size` requires the proof to be empty and the roots to be equal.
#[must_use]
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == 0 && *old_root != empty_root() {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    // 1. An empty consistency_path fails.
    let Some((head, tail)) = proof.split_first() else {
        return false;
    };
    // 2. If first is an exact power of 2, prepend first_hash to the path; and
    // 5. fr = sr = the first value of the path, the rest are iterated in 6.
    let (first, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (head, tail)
    };
    let mut fr = *first;
    let mut sr = *first;
    // 3. fn = first - 1, sn = second - 1.
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    // 4. While LSB(fn) is set, right-shift fn and sn.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // 6. For each subsequent value c of the path:
    for c in rest {
        // a. sn == 0: the path is too long.
        if s_n == 0 {
            return false;
        }
        // b. LSB(fn) set, or fn == sn: c is a left sibling of both paths.
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // ii. Skip the levels where this node has no right sibling.
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            // Otherwise c is a right sibling, in the new tree only.
            sr = node_hash(&sr, c);
        }
        // c. Up one level.
        f_n >>= 1;
        s_n >>= 1;
    }
    // 7. fr == first_hash, sr == second_hash and sn == 0.
    s_n == 0 && fr == *old_root && sr == *new_root
}

/// Lower-case hex of a hash (64 characters).
pub fn to_hex(h: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in h {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Parses 64 hex digits (either case) into a hash; `None` for anything else.
pub fn from_hex(s: &str) -> Option<Hash> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut h = [0; 32];
    for (out, pair) in h.iter_mut().zip(bytes.chunks_exact(2)) {
        *out = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---------------------------------------------------------------------------------
    // Reference implementation: naive and recursive, straight from RFC 9162 §2.1, over
    // the leaves' data (not their hashes), with its own hashing. Slow on purpose.
    // ---------------------------------------------------------------------------------

    fn sha256(parts: &[&[u8]]) -> Hash {
        let bytes: Vec<u8> = parts.concat();
        Sha256::digest(&bytes).into()
    }

    /// The largest power of two smaller than n, by counting.
    fn ref_k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// MTH(D_n).
    fn ref_mth(d: &[Vec<u8>]) -> Hash {
        match d.len() {
            0 => sha256(&[]),
            1 => sha256(&[&[0x00], &d[0]]),
            n => {
                let k = ref_k(n);
                sha256(&[&[0x01], &ref_mth(&d[..k]), &ref_mth(&d[k..])])
            }
        }
    }

    /// PATH(m, D_n).
    fn ref_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
        let n = d.len();
        if n == 1 {
            return vec![];
        }
        let k = ref_k(n);
        if m < k {
            let mut p = ref_path(m, &d[..k]);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_path(m - k, &d[k..]);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    /// PROOF(m, D_n) = SUBPROOF(m, D_n, true).
    fn ref_proof(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
        ref_subproof(m, d, true)
    }

    fn ref_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![ref_mth(d)] };
        }
        let k = ref_k(n);
        if m <= k {
            let mut p = ref_subproof(m, &d[..k], b);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_subproof(m - k, &d[k..], false);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    // ---------------------------------------------------------------------------------

    const MAX: usize = 70;

    /// Event-hash-like data: 32 distinct bytes per leaf.
    fn data(n: usize) -> Vec<Vec<u8>> {
        (0..n as u64)
            .map(|i| Sha256::digest(i.to_le_bytes()).to_vec())
            .collect()
    }

    fn leaves_of(d: &[Vec<u8>]) -> Vec<Hash> {
        d.iter().map(|x| leaf_hash(x)).collect()
    }

    /// `roots[s]` is the reference root of the first `s` leaves, for s in 0..=len.
    fn ref_roots(d: &[Vec<u8>]) -> Vec<Hash> {
        (0..=d.len()).map(|s| ref_mth(&d[..s])).collect()
    }

    /// The tree sizes probed as "wrong" around size `n` (a few either side, the empty
    /// tree, half and twice), among the `count` sizes there are roots for. Every other
    /// size would do too; these keep the exhaustive loops of the tests below quick.
    fn sizes_near(n: usize, count: usize) -> Vec<usize> {
        let mut sizes: Vec<usize> = (n.saturating_sub(4)..=n + 3).collect();
        sizes.extend([0, 1, n / 2, 2 * n]);
        sizes.retain(|&s| s != n && s < count);
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    fn hx(s: &str) -> Hash {
        from_hex(s).unwrap()
    }

    #[test]
    fn empty_root_is_sha256_of_the_empty_string() {
        let expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(to_hex(&empty_root()), expected);
        assert_eq!(root(&[]), hx(expected));
        assert_eq!(RootBuilder::new().root(), hx(expected));
    }

    #[test]
    fn hashes_match_the_definition() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        assert_eq!(a, sha256(&[&[0], b"a"]));
        assert_eq!(node_hash(&a, &b), sha256(&[&[1], &a, &b]));
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
    }

    #[test]
    fn split_is_the_largest_power_of_two_below_n() {
        for n in 2..=4100 {
            assert_eq!(split(n), ref_k(n), "n = {n}");
        }
    }

    #[test]
    fn root_equals_the_reference() {
        let d = data(MAX);
        let leaves = leaves_of(&d);
        for n in 0..=MAX {
            assert_eq!(root(&leaves[..n]), ref_mth(&d[..n]), "n = {n}");
        }
    }

    #[test]
    fn root_builder_equals_root_for_every_size_up_to_300() {
        let d = data(300);
        let leaves = leaves_of(&d);
        let mut builder = RootBuilder::default();
        assert!(builder.is_empty());
        assert_eq!(builder.root(), root(&[]));
        for (i, leaf) in leaves.iter().enumerate() {
            builder.push(*leaf);
            let n = i + 1;
            assert_eq!(builder.len(), n as u64);
            assert!(!builder.is_empty());
            assert_eq!(builder.root(), root(&leaves[..n]), "n = {n}");
            assert_eq!(builder.root(), ref_mth(&d[..n]), "n = {n}");
        }
    }

    /// Every way of getting an inclusion check wrong fails.
    fn assert_inclusion_rejects(
        leaves: &[Hash],
        roots: &[Hash],
        n: usize,
        i: usize,
        proof: &[Hash],
    ) {
        let (leaf, index, size, root) = (&leaves[i], i as u64, n as u64, &roots[n]);
        let ctx = format!("n = {n}, index = {i}");

        // Any byte of any element flipped.
        for e in 0..proof.len() {
            for byte in 0..32 {
                let mut bad = proof.to_vec();
                bad[e][byte] ^= 0x01;
                assert!(
                    !verify_inclusion(leaf, index, size, &bad, root),
                    "{ctx}: proof[{e}][{byte}] flipped"
                );
            }
        }
        // Wrong index, with this leaf or with the leaf really at that index.
        for (j, other) in leaves.iter().enumerate().take(n + 3) {
            if j == i {
                continue;
            }
            assert!(
                !verify_inclusion(leaf, j as u64, size, proof, root),
                "{ctx}: index {j}"
            );
            if j < n {
                assert!(
                    !verify_inclusion(other, j as u64, size, proof, root),
                    "{ctx}: leaf and index {j}"
                );
            }
        }
        // Wrong tree size, with the root of that size (a checkpoint publishes both).
        for s in sizes_near(n, roots.len()) {
            assert!(
                !verify_inclusion(leaf, index, s as u64, proof, &roots[s]),
                "{ctx}: size {s} with its root"
            );
        }
        // Wrong tree size with this root: twice and half (the probes of transparency-dev).
        for s in [2 * n, n / 2] {
            assert!(
                !verify_inclusion(leaf, index, s as u64, proof, root),
                "{ctx}: size {s} with the root of size {n}"
            );
        }
        // Wrong root: another size's, a flipped bit, the empty one.
        for s in sizes_near(n, roots.len()) {
            assert!(
                !verify_inclusion(leaf, index, size, proof, &roots[s]),
                "{ctx}: root of size {s}"
            );
        }
        let mut flipped = *root;
        flipped[31] ^= 0x80;
        assert!(
            !verify_inclusion(leaf, index, size, proof, &flipped),
            "{ctx}"
        );
        assert!(
            !verify_inclusion(leaf, index, size, proof, &empty_root()),
            "{ctx}"
        );
        // Wrong leaf: the leaf hash hashed again (the other leaves are probed above).
        assert!(
            !verify_inclusion(&leaf_hash(leaf), index, size, proof, root),
            "{ctx}"
        );
        // Elements added or removed.
        let mut longer = proof.to_vec();
        longer.push(*root);
        assert!(
            !verify_inclusion(leaf, index, size, &longer, root),
            "{ctx}: appended"
        );
        let mut longer = vec![*leaf];
        longer.extend_from_slice(proof);
        assert!(
            !verify_inclusion(leaf, index, size, &longer, root),
            "{ctx}: prepended"
        );
        if let Some((_, shorter)) = proof.split_last() {
            assert!(
                !verify_inclusion(leaf, index, size, shorter, root),
                "{ctx}: truncated"
            );
        }
    }

    #[test]
    fn inclusion_proofs_equal_the_reference_verify_and_reject_tampering() {
        // Three leaves beyond MAX, for the "wrong tree size" probes.
        let d = data(MAX + 3);
        let leaves = leaves_of(&d);
        let roots = ref_roots(&d);
        for n in 1..=MAX {
            assert_eq!(root(&leaves[..n]), roots[n]);
            for i in 0..n {
                let proof = inclusion_proof(&leaves[..n], i);
                assert_eq!(proof, ref_path(i, &d[..n]), "n = {n}, index = {i}");
                assert!(
                    verify_inclusion(&leaves[i], i as u64, n as u64, &proof, &roots[n]),
                    "n = {n}, index = {i}"
                );
                assert_inclusion_rejects(&leaves, &roots, n, i, &proof);
            }
        }
    }

    #[test]
    fn inclusion_in_the_empty_tree_or_past_the_end_fails() {
        let leaf = leaf_hash(b"x");
        assert!(!verify_inclusion(&leaf, 0, 0, &[], &empty_root()));
        assert!(!verify_inclusion(&leaf, 0, 0, &[], &leaf));
        assert!(!verify_inclusion(&leaf, 1, 1, &[], &leaf));
        assert!(verify_inclusion(&leaf, 0, 1, &[], &leaf));
        assert!(!verify_inclusion(&leaf, u64::MAX, u64::MAX, &[], &leaf));
    }

    #[test]
    #[should_panic(expected = "inclusion proof of leaf 3 in a tree of 3 leaves")]
    fn inclusion_proof_past_the_end_panics() {
        inclusion_proof(&leaves_of(&data(3)), 3);
    }

    /// The tree size is bound by the root it is checked against, not by the proof: two
    /// sizes whose paths to a leaf have the same shape accept the same proof. This is the
    /// RFC's algorithm, and why a checkpoint publishes the size with the root.
    #[test]
    fn tree_size_is_bound_by_the_root_not_by_the_proof() {
        let leaves = leaves_of(&data(4));
        let proof = inclusion_proof(&leaves[..3], 0);
        let root3 = root(&leaves[..3]);
        assert!(verify_inclusion(&leaves[0], 0, 3, &proof, &root3));
        assert!(verify_inclusion(&leaves[0], 0, 4, &proof, &root3));
        assert!(!verify_inclusion(&leaves[0], 0, 4, &proof, &root(&leaves)));
    }

    /// Every way of getting a consistency check wrong fails.
    fn assert_consistency_rejects(roots: &[Hash], m: usize, n: usize, proof: &[Hash]) {
        let (old, new) = (m as u64, n as u64);
        let (old_root, new_root) = (&roots[m], &roots[n]);
        let ctx = format!("old = {m}, new = {n}");

        for e in 0..proof.len() {
            for byte in 0..32 {
                let mut bad = proof.to_vec();
                bad[e][byte] ^= 0x01;
                assert!(
                    !verify_consistency(old, new, old_root, new_root, &bad),
                    "{ctx}: proof[{e}][{byte}] flipped"
                );
            }
        }
        // Wrong old size, or wrong new size, each with the root of that size.
        let near: Vec<usize> = sizes_near(m, roots.len())
            .into_iter()
            .chain(sizes_near(n, roots.len()))
            .collect();
        for &s in &near {
            if s != m && s <= n {
                assert!(
                    !verify_consistency(s as u64, new, &roots[s], new_root, proof),
                    "{ctx}: old size {s} with its root"
                );
            }
            if s != n && s >= m {
                assert!(
                    !verify_consistency(old, s as u64, old_root, &roots[s], proof),
                    "{ctx}: new size {s} with its root"
                );
            }
        }
        // Wrong sizes with these roots: twice and half (the probes of transparency-dev).
        for (o, s) in [(m - 1, n), (m + 1, n), (m ^ 2, n), (m, 2 * n), (m, n / 2)] {
            assert!(
                !verify_consistency(o as u64, s as u64, old_root, new_root, proof),
                "{ctx}: sizes {o} -> {s} with these roots"
            );
        }
        // Wrong roots.
        for &s in &near {
            let other = &roots[s];
            if s != m {
                assert!(
                    !verify_consistency(old, new, other, new_root, proof),
                    "{ctx}: old root of size {s}"
                );
            }
            if s != n {
                assert!(
                    !verify_consistency(old, new, old_root, other, proof),
                    "{ctx}: new root of size {s}"
                );
            }
        }
        assert!(
            !verify_consistency(old, new, new_root, old_root, proof),
            "{ctx}: swapped"
        );
        assert!(
            !verify_consistency(new, old, new_root, old_root, proof),
            "{ctx}: reversed"
        );
        // Elements added or removed.
        assert!(
            !verify_consistency(old, new, old_root, new_root, &[]),
            "{ctx}: empty"
        );
        for extra in [*old_root, *new_root, proof[0]] {
            let mut longer = proof.to_vec();
            longer.push(extra);
            assert!(
                !verify_consistency(old, new, old_root, new_root, &longer),
                "{ctx}"
            );
            let mut longer = vec![extra];
            longer.extend_from_slice(proof);
            assert!(
                !verify_consistency(old, new, old_root, new_root, &longer),
                "{ctx}"
            );
        }
        let shorter = &proof[..proof.len() - 1];
        assert!(
            !verify_consistency(old, new, old_root, new_root, shorter),
            "{ctx}: truncated"
        );
    }

    #[test]
    fn consistency_proofs_equal_the_reference_verify_and_reject_tampering() {
        let d = data(MAX + 3);
        let leaves = leaves_of(&d);
        let roots = ref_roots(&d);
        for n in 1..=MAX {
            for m in 0..=n {
                let proof = consistency_proof(&leaves[..n], m);
                let ctx = format!("old = {m}, new = {n}");
                if m == 0 || m == n {
                    assert!(proof.is_empty(), "{ctx}");
                } else {
                    assert_eq!(proof, ref_proof(m, &d[..n]), "{ctx}");
                }
                assert!(
                    verify_consistency(m as u64, n as u64, &roots[m], &roots[n], &proof),
                    "{ctx}"
                );
                if !proof.is_empty() {
                    assert_consistency_rejects(&roots, m, n, &proof);
                }
            }
        }
    }

    #[test]
    fn consistency_edge_cases_fail_closed() {
        let leaves = leaves_of(&data(5));
        let (r0, r3, r5) = (empty_root(), root(&leaves[..3]), root(&leaves));
        // The empty tree is a prefix of every tree, with the empty root and no proof.
        assert!(verify_consistency(0, 0, &r0, &r0, &[]));
        assert!(verify_consistency(0, 5, &r0, &r5, &[]));
        assert!(!verify_consistency(0, 5, &r3, &r5, &[]));
        assert!(!verify_consistency(0, 0, &r3, &r3, &[]));
        assert!(!verify_consistency(0, 5, &r0, &r5, &[r5]));
        // Equal sizes: equal roots, no proof.
        assert!(verify_consistency(3, 3, &r3, &r3, &[]));
        assert!(!verify_consistency(3, 3, &r3, &r5, &[]));
        assert!(!verify_consistency(3, 3, &r3, &r3, &[r3]));
        // Shrinking.
        let proof = consistency_proof(&leaves, 3);
        assert!(verify_consistency(3, 5, &r3, &r5, &proof));
        assert!(!verify_consistency(5, 3, &r5, &r3, &proof));
        assert!(!verify_consistency(5, 3, &r3, &r5, &proof));
    }

    #[test]
    #[should_panic(expected = "consistency proof from size 4 to a tree of 3 leaves")]
    fn consistency_proof_past_the_end_panics() {
        consistency_proof(&leaves_of(&data(3)), 4);
    }

    // ---------------------------------------------------------------------------------
    // Known answers. The leaf inputs, roots and proofs are those of the Certificate
    // Transparency test data, as found in transparency-dev/merkle (the successor of
    // certificate-transparency-go's merkle package): testonly/constants.go (LeafInputs,
    // RootHashes) and proof/verify_test.go (inclusionProofs, consistencyProofs; there
    // the leaf in {leaf, size} is 1-based).
    // ---------------------------------------------------------------------------------

    fn ct_leaves() -> Vec<Hash> {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        inputs.iter().map(|d| leaf_hash(d)).collect()
    }

    const CT_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn ct_known_roots() {
        let leaves = ct_leaves();
        let mut builder = RootBuilder::new();
        for (n, expected) in CT_ROOTS.iter().enumerate() {
            assert_eq!(to_hex(&root(&leaves[..n])), *expected, "n = {n}");
            assert_eq!(to_hex(&builder.root()), *expected, "n = {n}");
            if n < leaves.len() {
                builder.push(leaves[n]);
            }
        }
    }

    #[test]
    fn ct_known_inclusion_proofs() {
        let leaves = ct_leaves();
        // (0-based index, tree size, audit path)
        let cases: [(usize, usize, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, path) in cases {
            let expected: Vec<Hash> = path.iter().map(|h| hx(h)).collect();
            assert_eq!(inclusion_proof(&leaves[..size], index), expected);
            let root = hx(CT_ROOTS[size]);
            assert!(verify_inclusion(
                &leaves[index],
                index as u64,
                size as u64,
                &expected,
                &root
            ));
        }
    }

    #[test]
    fn ct_known_consistency_proofs() {
        let leaves = ct_leaves();
        // (old size, new size, proof)
        let cases: [(usize, usize, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (old, new, path) in cases {
            let expected: Vec<Hash> = path.iter().map(|h| hx(h)).collect();
            assert_eq!(consistency_proof(&leaves[..new], old), expected);
            assert!(verify_consistency(
                old as u64,
                new as u64,
                &hx(CT_ROOTS[old]),
                &hx(CT_ROOTS[new]),
                &expected
            ));
        }
    }

    #[test]
    fn hex_round_trips_and_rejects_malformed_input() {
        let h = leaf_hash(b"event");
        let s = to_hex(&h);
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_lowercase());
        assert_eq!(from_hex(&s), Some(h));
        assert_eq!(from_hex(&s.to_uppercase()), Some(h));
        assert_eq!(to_hex(&[0; 32]), "0".repeat(64));
        assert_eq!(from_hex(&"ff".repeat(32)), Some([0xff; 32]));
        assert_eq!(from_hex(""), None);
        assert_eq!(from_hex(&s[..62]), None);
        assert_eq!(from_hex(&format!("{s}00")), None);
        assert_eq!(from_hex(&format!("{}g", &s[..63])), None);
        assert_eq!(from_hex(&format!(" {}", &s[..63])), None);
        assert_eq!(from_hex(&format!("+{}", &s[..63])), None);
        // 64 bytes, but not 64 ASCII characters.
        assert_eq!(from_hex(&format!("é{}", &s[..62])), None);
    }
}
