//! A cursor position in a checked LMDB tree: the path from the root to a leaf record, moved by
//! `first`, `seek` (first key ≥ a key) and `next`.
//!
//! Every move ends: a descent is at most the tree's depth (≤ 32) pages, and `next` requires
//! each key to be strictly greater than the one before, so however a damaged file links its
//! pages, no leaf page is reached twice in one pass (its keys would not be greater the second
//! time): a pass from the first record reads at most depth × (leaf pages in the file) pages.

use std::ops::Range;

use super::format::{Checked, Entry, Fault, MAX_DEPTH, NodePage, Tree};

/// One level of the path: a page and the node taken on it.
#[derive(Clone, Copy, Debug)]
struct Step {
    page: u64,
    index: usize,
    keys: usize,
}

/// Where a cursor rests. Invariant: when `entry` is Some, `path` runs from the root to the
/// leaf holding it (`path.len()` = the tree's depth) and `entry` is that leaf's node
/// `path.last().index`.
#[derive(Default)]
pub(super) struct Walk {
    path: Vec<Step>,
    entry: Option<Entry>,
}

impl Walk {
    pub(super) fn entry(&self) -> Option<&Entry> {
        self.entry.as_ref()
    }

    /// Invalid (past the end, empty, or after a failed move).
    pub(super) fn clear(&mut self) {
        self.path.clear();
        self.entry = None;
    }

    /// Moves to the first record (invalid when the tree is empty).
    pub(super) fn first(&mut self, tree: &Tree<'_>) -> Checked<()> {
        self.clear();
        let Some(root) = tree.meta().root else {
            return Ok(());
        };
        let result = self.descend(tree, root, |_| Ok(0));
        self.settle(tree, result)
    }

    /// Moves to the first record whose key is ≥ `key` (invalid when there is none).
    pub(super) fn seek(&mut self, tree: &Tree<'_>, key: &[u8]) -> Checked<()> {
        self.clear();
        let Some(root) = tree.meta().root else {
            return Ok(());
        };
        let result = self
            .descend(tree, root, |page| {
                if page.leaf() {
                    first_not_below(page, key)
                } else {
                    last_not_above(page, key)
                }
            })
            .and_then(|landed| {
                if landed {
                    Ok(())
                } else {
                    // Every key on that leaf is below `key`: the answer starts the next leaf.
                    self.step_to_next_leaf(tree)
                }
            });
        self.settle(tree, result)?;
        if let Some(entry) = &self.entry {
            let found = tree.bytes().get(entry.key.clone()).unwrap_or_default();
            if found < key {
                let found = found.escape_ascii().to_string();
                self.clear();
                return Err(Fault::Damaged(format!(
                    "seeking {} found the smaller key {found}: the tree's keys are out of order",
                    key.escape_ascii()
                )));
            }
        }
        Ok(())
    }

    /// Moves to the next record (invalid past the last). The new key must be greater than the
    /// current one.
    pub(super) fn next(&mut self, tree: &Tree<'_>) -> Checked<()> {
        let Some(previous) = self.entry.take().map(|e| e.key) else {
            return Ok(());
        };
        let result = match self.path.last_mut() {
            Some(leaf) if leaf.index + 1 < leaf.keys => {
                leaf.index += 1;
                Ok(())
            }
            _ => self.step_to_next_leaf(tree),
        };
        self.settle(tree, result)?;
        self.check_order(tree, previous)
    }

    /// After a move: loads the entry the path ends on, or clears the position on failure.
    fn settle(&mut self, tree: &Tree<'_>, moved: Checked<impl Sized>) -> Checked<()> {
        let loaded = moved.and_then(|_| self.load(tree));
        if loaded.is_err() {
            self.clear();
        }
        loaded
    }

    /// Reads the entry at the end of the path (none when the path is empty: the end).
    fn load(&mut self, tree: &Tree<'_>) -> Checked<()> {
        self.entry = None;
        let Some(&leaf) = self.path.last() else {
            return Ok(());
        };
        if leaf.index >= leaf.keys {
            // Only an empty root leaf (an empty tree) leaves the path on no node.
            self.path.clear();
            return Ok(());
        }
        let page = tree.node_page(leaf.page, self.path.len() - 1, true)?;
        self.entry = Some(page.entry(tree, leaf.index)?);
        Ok(())
    }

    fn check_order(&mut self, tree: &Tree<'_>, previous: Range<usize>) -> Checked<()> {
        let Some(entry) = &self.entry else {
            return Ok(());
        };
        let bytes = tree.bytes();
        let (before, now) = (
            bytes.get(previous).unwrap_or_default(),
            bytes.get(entry.key.clone()).unwrap_or_default(),
        );
        if now > before {
            return Ok(());
        }
        let page = self.path.last().map_or(0, |s| s.page);
        let message = format!(
            "page {page}: key {} follows key {}: the tree's keys are out of order",
            now.escape_ascii(),
            before.escape_ascii()
        );
        self.clear();
        Err(Fault::Damaged(message))
    }

    /// Replaces the path's leaf with the first node of the next leaf: up to the lowest level
    /// with a node to the right, one step right, then down the leftmost nodes. An empty path
    /// means the end.
    fn step_to_next_leaf(&mut self, tree: &Tree<'_>) -> Checked<()> {
        loop {
            self.path.pop();
            let Some(parent) = self.path.last_mut() else {
                return Ok(());
            };
            if parent.index + 1 < parent.keys {
                parent.index += 1;
                break;
            }
        }
        let Some(&parent) = self.path.last() else {
            return Ok(());
        };
        let level = self.path.len() - 1;
        let child = tree
            .node_page(parent.page, level, false)?
            .child(parent.index)?;
        self.descend_from(tree, child, |_| Ok(0)).map(|_| ())
    }

    /// Clears the path and walks from the root to a leaf, taking on each page the node `pick`
    /// names. Returns whether the leaf's node exists (`pick` may answer `keys` on a leaf: past
    /// its end).
    fn descend(
        &mut self,
        tree: &Tree<'_>,
        root: u64,
        pick: impl Fn(&NodePage<'_>) -> Checked<usize>,
    ) -> Checked<bool> {
        self.path.clear();
        self.descend_from(tree, root, pick)
    }

    /// Walks down from `page` (at level `path.len()`) to a leaf, appending to the path.
    fn descend_from(
        &mut self,
        tree: &Tree<'_>,
        mut page: u64,
        pick: impl Fn(&NodePage<'_>) -> Checked<usize>,
    ) -> Checked<bool> {
        let depth = tree.meta().depth;
        loop {
            let level = self.path.len();
            if level >= depth.min(MAX_DEPTH) {
                return Err(Fault::Damaged(format!(
                    "the tree is deeper than its {depth} levels"
                )));
            }
            let leaf = level + 1 == depth;
            let node_page = tree.node_page(page, level, leaf)?;
            let index = pick(&node_page)?;
            self.path.push(Step {
                page,
                index,
                keys: node_page.keys(),
            });
            if leaf {
                return Ok(index < node_page.keys());
            }
            page = node_page.child(index)?;
        }
    }
}

/// On a leaf: the first node whose key is ≥ `key` (`keys()` when none is).
fn first_not_below(page: &NodePage<'_>, key: &[u8]) -> Checked<usize> {
    let (mut low, mut high) = (0, page.keys());
    while low < high {
        let mid = low + (high - low) / 2;
        if page.key(mid)? < key {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    Ok(low)
}

/// On a branch: the last node whose key is ≤ `key`, node 0 standing for everything below
/// node 1's key.
fn last_not_above(page: &NodePage<'_>, key: &[u8]) -> Checked<usize> {
    let (mut low, mut high) = (1, page.keys());
    while low < high {
        let mid = low + (high - low) / 2;
        if page.key(mid)? <= key {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    Ok(low - 1)
}
