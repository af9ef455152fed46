//! Names of perfect subtrees: the only nodes storage ever holds.

/// A perfect subtree over leaves `[index << level, (index + 1) << level)`.
///
/// Level 0 nodes are leaves. Nodes of one level are numbered left to right from 0, so a node's
/// children are `(level - 1, 2 * index)` and `(level - 1, 2 * index + 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u8,
    /// Position among the nodes of this level, left to right.
    pub index: u64,
}

impl NodeId {
    /// The node at `level`, `index`.
    pub const fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }

    /// The leaf with this index.
    pub const fn leaf(index: u64) -> Self {
        NodeId { level: 0, index }
    }

    /// The node one level up that contains this one.
    pub const fn parent(self) -> Self {
        NodeId { level: self.level + 1, index: self.index >> 1 }
    }

    /// The other child of this node's parent.
    pub const fn sibling(self) -> Self {
        NodeId { level: self.level, index: self.index ^ 1 }
    }

    /// Index of the first leaf this node covers.
    pub const fn first_leaf(self) -> u64 {
        self.index << self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_relations_follow_the_numbering() {
        let node = NodeId::new(2, 5);
        assert_eq!(node.parent(), NodeId::new(3, 2));
        assert_eq!(node.sibling(), NodeId::new(2, 4));
        assert_eq!(node.sibling().sibling(), node);
        assert_eq!(node.first_leaf(), 20);
        assert_eq!(NodeId::leaf(7), NodeId::new(0, 7));
    }
}
