//! The hash function the tree is built with, and the RFC 9162 domain separation around it.

/// A node, leaf or root hash. Both supported hashes are 32 bytes long.
pub type Hash = [u8; 32];

/// The tree's hash function. Implemented by unit structs, so every function is associated
/// (`H::hash_leaf(..)`) and proofs need no hasher value passed around.
pub trait TreeHasher {
    /// The hash of the concatenation of `parts`.
    fn digest(parts: &[&[u8]]) -> Hash;

    /// The root of the empty tree: `H("")`.
    fn empty_root() -> Hash {
        Self::digest(&[])
    }

    /// RFC 9162 leaf hash `H(0x00 || data)`. The log itself uses its own leaf type bytes and
    /// hands in finished leaf hashes; this is for test vectors and simple callers.
    fn hash_leaf(data: &[u8]) -> Hash {
        Self::digest(&[&[0x00], data])
    }

    /// RFC 9162 interior node hash `H(0x01 || left || right)`.
    fn hash_children(left: &Hash, right: &Hash) -> Hash {
        Self::digest(&[&[0x01], left, right])
    }
}

/// SHA-256, the hash of RFC 6962 / RFC 9162 logs and of the published vectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sha256;

/// SHA3-256, the hash this project's log uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sha3_256;

impl TreeHasher for Sha256 {
    fn digest(parts: &[&[u8]]) -> Hash {
        digest_with::<sha2::Sha256>(parts)
    }
}

impl TreeHasher for Sha3_256 {
    fn digest(parts: &[&[u8]]) -> Hash {
        digest_with::<sha3::Sha3_256>(parts)
    }
}

/// Feeds the parts one by one, so callers never build a concatenated buffer.
fn digest_with<D: sha2::Digest>(parts: &[&[u8]]) -> Hash
where
    Hash: From<sha2::digest::Output<D>>,
{
    let mut hasher = D::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_roots_are_the_hash_of_nothing() {
        let sha256_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let sha3_empty = "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a";
        assert_eq!(hex::encode(Sha256::empty_root()), sha256_empty);
        assert_eq!(hex::encode(Sha3_256::empty_root()), sha3_empty);
    }

    #[test]
    fn digest_of_parts_equals_digest_of_their_concatenation() {
        let whole = Sha3_256::digest(&[b"abcdef"]);
        assert_eq!(Sha3_256::digest(&[b"ab", b"", b"cdef"]), whole);
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        let l = Sha256::hash_leaf(b"x");
        let r = Sha256::hash_leaf(b"y");
        let mut concatenated = Vec::from(l);
        concatenated.extend_from_slice(&r);
        assert_ne!(Sha256::hash_children(&l, &r), Sha256::hash_leaf(&concatenated));
    }
}
