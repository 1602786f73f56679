//! The links of a tar archive seen so far, to refuse a later member written through one.
//!
//! Kept component by component (a slot per parent number and component), so asking whether
//! any proper prefix of a path is a link costs one lookup per component: time linear in the
//! path's length. A set of whole paths would hash every prefix, depth times length.

use std::collections::HashMap;

/// Symbolic or hard links by path.
#[derive(Default)]
pub(crate) struct Links {
    /// `"parent/component"` to the node's number and whether the node is itself a link.
    slots: HashMap<String, (u64, bool)>,
    /// Number of nodes so far (0 is the root).
    nodes: u64,
}

impl Links {
    /// Records a link at `path` (a normalized member path).
    pub(crate) fn insert(&mut self, path: &str) {
        let mut parent = 0;
        let mut comps = path.split('/').peekable();
        while let Some(c) = comps.next() {
            let last = comps.peek().is_none();
            let next = self.nodes + 1;
            let slot = self
                .slots
                .entry(format!("{parent}/{c}"))
                .or_insert((next, false));
            if slot.0 == next {
                self.nodes = next;
            }
            slot.1 |= last;
            parent = slot.0;
        }
    }

    /// The first proper prefix of `path` (by components) that is a link.
    pub(crate) fn prefix_of<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.slots.is_empty() {
            return None;
        }
        let mut parent = 0;
        let mut end = 0;
        for c in path.split('/') {
            // The last component is the member itself, not a prefix.
            if end + c.len() >= path.len() {
                return None;
            }
            let &(node, link) = self.slots.get(&format!("{parent}/{c}"))?;
            end += c.len();
            if link {
                return Some(&path[..end]);
            }
            end += 1;
            parent = node;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_link_among_the_prefixes() {
        let mut l = Links::default();
        assert_eq!(l.prefix_of("a/b"), None);
        l.insert("d/l2");
        l.insert("d/l1");
        l.insert("x");
        assert_eq!(l.prefix_of("d/l2/outside/f"), Some("d/l2"));
        assert_eq!(l.prefix_of("d/l1/f"), Some("d/l1"));
        assert_eq!(l.prefix_of("d/l2"), None, "the link itself is no prefix");
        assert_eq!(l.prefix_of("d/f"), None);
        assert_eq!(l.prefix_of("x/y/z"), Some("x"));
        assert_eq!(l.prefix_of("xy/z"), None);
        l.insert("d");
        assert_eq!(l.prefix_of("d/other"), Some("d"));
    }
}
