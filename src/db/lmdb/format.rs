//! LMDB's on-disk format, read and checked over a byte slice (the mapped `data.mdb`).
//!
//! Facts used (LMDB 0.9.x, data format version 1, as a 64-bit liblmdb, heed or Python's `lmdb`
//! writes it; integers in the writer's byte order, little-endian here: a big-endian file fails
//! the magic check):
//! - The file is a sequence of pages of `page_size` bytes; page `n` starts at `n * page_size`.
//!   Pages 0 and 1 are meta pages; a write transaction with id `t` rewrites meta page `t % 2`.
//!   liblmdb refuses a file unless both are meta pages of its format, and a reader uses the
//!   one with the larger transaction id.
//! - Page header (16 bytes): page number `u64` at 0, a pad `u16` at 8, flags `u16` at 10, then
//!   either `lower` and `upper` `u16`s at 12 and 14 (branch and leaf pages: the bounds of the
//!   free space between the node offsets and the nodes) or the `u32` page count of an overflow
//!   run at 12. Branch and leaf pages hold `(lower - 16) / 2` node offsets (`u16`, relative to
//!   the page) from byte 16 on; the nodes themselves lie in `upper..page_size`.
//! - Node header (8 bytes): `lo` and `hi` `u16`s at 0 and 2, flags `u16` at 4, key size `u16`
//!   at 6, then the key, then (leaves) the data. Leaves: data size = `lo | hi << 16`; with
//!   `F_BIGDATA` the data is the `u64` number of the first overflow page, whose data begins
//!   after that page's header and runs on through the following pages. Branches: child page =
//!   `lo | hi << 16 | flags << 32`; the key of node 0 is not used (it stands for "below all").
//! - Meta page: after the page header, magic `u32` (0xBEEFC0DE), version `u32` (1), the fixed
//!   map address and map size (`u64` each), two database records of 48 bytes (free pages, then
//!   the unnamed main database), the last used page number `u64` and the transaction id `u64`.
//!   A database record: `u32` pad (the page size, in the free-pages record), flags `u16`, depth
//!   `u16`, branch, leaf and overflow page counts, entries and the root page (`u64` each); an
//!   empty database has the root `u64::MAX`.
//! - Keys sort bytewise, a shorter key before its extensions (the main database's default).
//!
//! Everything a page, a node or a meta record says is checked before it is followed: page
//! numbers against the tree's last page and the file's length, header bounds and node offsets
//! against the page, key and data lengths against the page or the overflow run, the tree's
//! depth against LMDB's cursor stack. A failed check is a [`Fault`], never a panic.

use std::ops::Range;

/// Bytes of a page header.
const PAGE_HEADER: usize = 16;
/// Bytes of a node header.
const NODE_HEADER: usize = 8;

const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_OVERFLOW: u16 = 0x04;
const P_META: u16 = 0x08;
const P_LEAF2: u16 = 0x20;
const P_SUBP: u16 = 0x40;
/// Page flags LMDB uses for its own bookkeeping (dirty, loose, keep), saying nothing about the
/// content; ignored when reading.
const P_BOOKKEEPING: u16 = 0x10 | 0x4000 | 0x8000;

const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
const F_DUPDATA: u16 = 0x04;

const MAGIC: u32 = 0xBEEF_C0DE;
const DATA_VERSION: u32 = 1;

// Meta page offsets, from the start of the page.
const META_MAGIC: usize = PAGE_HEADER;
const META_VERSION: usize = PAGE_HEADER + 4;
const META_FREE_DB: usize = PAGE_HEADER + 24;
const META_MAIN_DB: usize = META_FREE_DB + 48;
const META_LAST_PAGE: usize = META_MAIN_DB + 48;
const META_TXNID: usize = META_LAST_PAGE + 8;
const META_END: usize = META_TXNID + 8;

// Database record offsets.
const DB_PAD: usize = 0;
const DB_FLAGS: usize = 4;
const DB_DEPTH: usize = 6;
const DB_ENTRIES: usize = 32;
const DB_ROOT: usize = 40;

/// Main-database flags that change the key order (`MDB_REVERSEKEY`, `MDB_INTEGERKEY`).
const DB_KEY_ORDER: u16 = 0x02 | 0x08;
/// Main-database flags of sorted duplicates (`MDB_DUPSORT`, `MDB_DUPFIXED`, `MDB_INTEGERDUP`,
/// `MDB_REVERSEDUP`).
const DB_DUPLICATES: u16 = 0x04 | 0x10 | 0x20 | 0x40;

/// Page sizes LMDB can write: its OS page size, at most 32 KiB (node offsets are `u16`).
/// 512 bytes is well below any real OS page and still holds a meta record.
const MIN_PAGE_SIZE: usize = 512;
const MAX_PAGE_SIZE: usize = 0x8000;
/// LMDB's cursor stack: no tree is deeper.
pub(super) const MAX_DEPTH: usize = 32;
/// The root of an empty database.
const NO_PAGE: u64 = u64::MAX;
/// Page numbers fit 48 bits in a branch node.
const MAX_PAGE_NUMBER: u64 = (1 << 48) - 1;

/// Why a read stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fault {
    /// The bytes are not a consistent LMDB file (damaged, truncated, not LMDB).
    Damaged(String),
    /// A valid LMDB feature that Caffe2 never wrote and this reader does not read.
    Unsupported(String),
}

pub(super) type Checked<T> = std::result::Result<T, Fault>;

fn damaged<T>(message: String) -> Checked<T> {
    Err(Fault::Damaged(message))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// The snapshot a meta page describes, checked against itself (not yet against the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Meta {
    pub page_size: usize,
    pub txnid: u64,
    /// Highest page number the snapshot uses.
    pub last_page: u64,
    /// Root page of the main database; None when it is empty.
    pub root: Option<u64>,
    /// Levels of the main tree (1 = the root is a leaf); 0 when empty.
    pub depth: usize,
    /// Records in the main database, as the meta page counts them.
    pub entries: u64,
}

/// The page size meta page 0 declares, after checking that page 0 is an LMDB meta page.
fn page_size(bytes: &[u8]) -> Checked<usize> {
    if bytes.len() < META_END {
        return damaged(format!(
            "{} bytes, too short for an LMDB meta page ({META_END} bytes)",
            bytes.len()
        ));
    }
    let magic = u32_at(bytes, META_MAGIC).unwrap_or_default();
    if magic != MAGIC {
        return damaged(format!(
            "not an LMDB file (magic {magic:#010x} where {MAGIC:#010x} belongs)"
        ));
    }
    let size = u32_at(bytes, META_FREE_DB + DB_PAD).unwrap_or_default() as usize;
    if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&size) || !size.is_power_of_two() {
        return damaged(format!(
            "page size {size} is not a power of two in {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE}"
        ));
    }
    Ok(size)
}

/// Meta page `index` (0 or 1) of a file with `page_size`-byte pages, after the checks liblmdb
/// makes of both meta pages when it opens a file: meta flags, magic, version, page size.
fn meta_page(bytes: &[u8], index: usize, page_size: usize) -> Checked<&[u8]> {
    let at = index * page_size;
    let Some(page) = bytes.get(at..at + page_size) else {
        return damaged(format!(
            "meta page {index} lies beyond the end of the file ({} bytes): truncated",
            bytes.len()
        ));
    };
    // Every offset read below is under META_END < MIN_PAGE_SIZE ≤ page.len().
    let flags = u16_at(page, 10).unwrap_or_default() & !P_BOOKKEEPING;
    if flags != P_META {
        return damaged(format!("meta page {index} has page flags {flags:#x}"));
    }
    let magic = u32_at(page, META_MAGIC).unwrap_or_default();
    if magic != MAGIC {
        return damaged(format!("meta page {index} has magic {magic:#010x}"));
    }
    let version = u32_at(page, META_VERSION).unwrap_or_default();
    if version != DATA_VERSION {
        return Err(Fault::Unsupported(format!(
            "meta page {index} has data format version {version}; only LMDB 0.9's version \
             {DATA_VERSION} is read"
        )));
    }
    let declared = u32_at(page, META_FREE_DB + DB_PAD).unwrap_or_default() as usize;
    if declared != page_size {
        return damaged(format!(
            "meta page {index} declares page size {declared}, meta page 0 {page_size}"
        ));
    }
    Ok(page)
}

fn txnid(meta_page: &[u8]) -> u64 {
    u64_at(meta_page, META_TXNID).unwrap_or_default()
}

/// The snapshot meta page `index` describes, checked in itself.
fn read_meta(page: &[u8], index: usize, page_size: usize) -> Checked<Meta> {
    let field16 = |at| u16_at(page, at).unwrap_or_default();
    let field64 = |at| u64_at(page, at).unwrap_or_default();
    let db_flags = field16(META_MAIN_DB + DB_FLAGS);
    if db_flags & DB_DUPLICATES != 0 {
        return Err(Fault::Unsupported(format!(
            "the main database has sorted duplicates (flags {db_flags:#x}); Caffe2 DBs have one \
             value per key"
        )));
    }
    if db_flags & DB_KEY_ORDER != 0 {
        return Err(Fault::Unsupported(format!(
            "the main database uses reverse or integer keys (flags {db_flags:#x}); Caffe2 DBs \
             sort keys bytewise"
        )));
    }
    if db_flags != 0 {
        return damaged(format!(
            "meta page {index}: unknown main database flags {db_flags:#x}"
        ));
    }
    let last_page = field64(META_LAST_PAGE);
    if !(1..=MAX_PAGE_NUMBER).contains(&last_page) {
        return damaged(format!(
            "meta page {index}: last page {last_page} out of range"
        ));
    }
    let depth = usize::from(field16(META_MAIN_DB + DB_DEPTH));
    let root = match field64(META_MAIN_DB + DB_ROOT) {
        NO_PAGE => None,
        root if (2..=last_page).contains(&root) => {
            if !(1..=MAX_DEPTH).contains(&depth) {
                return damaged(format!(
                    "meta page {index}: tree depth {depth} outside 1..={MAX_DEPTH}"
                ));
            }
            Some(root)
        }
        root => {
            return damaged(format!(
                "meta page {index}: root page {root} outside the tree's pages 2..={last_page}"
            ));
        }
    };
    Ok(Meta {
        page_size,
        txnid: txnid(page),
        last_page,
        root,
        depth: if root.is_some() { depth } else { 0 },
        entries: field64(META_MAIN_DB + DB_ENTRIES),
    })
}

/// Picks the snapshot to read, as liblmdb does: both meta pages must pass the checks it makes
/// when opening a file, and the one with the larger transaction id is used (meta page 0 on a
/// tie), or the one with id `txnid` when a read transaction of this process already chose it.
/// Then checks that snapshot's record and that its root lies inside the file.
pub(super) fn pick_meta(bytes: &[u8], want: Option<u64>) -> Checked<Meta> {
    let page_size = page_size(bytes)?;
    let pages = (bytes.len() / page_size) as u64;
    if pages < 2 {
        return damaged(format!(
            "{} bytes hold fewer than the two {page_size}-byte meta pages: truncated",
            bytes.len()
        ));
    }
    let metas = [
        meta_page(bytes, 0, page_size)?,
        meta_page(bytes, 1, page_size)?,
    ];
    let ids = [txnid(metas[0]), txnid(metas[1])];
    let index = match want {
        None => usize::from(ids[1] > ids[0]),
        Some(t) => match ids.iter().position(|&id| id == t) {
            Some(i) => i,
            None => {
                return damaged(format!(
                    "no meta page of transaction {t} (the meta pages hold {} and {}): the file \
                     changed while it was opened",
                    ids[0], ids[1]
                ));
            }
        },
    };
    let meta = read_meta(metas[index], index, page_size)?;
    if let Some(root) = meta.root.filter(|&r| r >= pages) {
        return damaged(format!(
            "root page {root} lies beyond the end of the file ({pages} pages of {page_size} \
             bytes): truncated"
        ));
    }
    Ok(meta)
}

/// A snapshot's main tree over the file's bytes: every page it hands out has been checked.
#[derive(Clone, Copy)]
pub(super) struct Tree<'a> {
    bytes: &'a [u8],
    meta: Meta,
    /// Whole pages in `bytes`.
    pages: u64,
}

/// A checked branch or leaf page.
#[derive(Clone, Copy)]
pub(super) struct NodePage<'a> {
    number: u64,
    /// The page's bytes.
    page: &'a [u8],
    /// Offset of the page in the file.
    base: usize,
    /// Start of the node area (`upper`).
    nodes_from: usize,
    keys: usize,
    leaf: bool,
}

/// One leaf record as ranges of the file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

impl<'a> Tree<'a> {
    /// The tree of `meta`, a snapshot [`pick_meta`] chose from the same `bytes`.
    pub(super) fn new(bytes: &'a [u8], meta: Meta) -> Self {
        Self {
            bytes,
            meta,
            pages: (bytes.len() / meta.page_size) as u64,
        }
    }

    pub(super) fn meta(&self) -> &Meta {
        &self.meta
    }

    pub(super) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Page `number` of the snapshot: its offset and bytes, after checking its place in the file
    /// and that it says it is that page.
    fn page(&self, number: u64) -> Checked<(usize, &'a [u8])> {
        let last = self.meta.last_page;
        if !(2..=last).contains(&number) {
            return damaged(format!(
                "a link to page {number}, outside the tree's pages 2..={last}"
            ));
        }
        if number >= self.pages {
            return damaged(format!(
                "page {number} lies beyond the end of the file ({} pages of {} bytes): truncated",
                self.pages, self.meta.page_size
            ));
        }
        // number < pages ≤ len / page_size, so the page lies inside `bytes`.
        let base = number as usize * self.meta.page_size;
        let Some(page) = self.bytes.get(base..base + self.meta.page_size) else {
            return damaged(format!("page {number} lies beyond the end of the file"));
        };
        let stored = u64_at(page, 0).unwrap_or_default();
        if stored != number {
            return damaged(format!("page {number} is marked as page {stored}"));
        }
        Ok((base, page))
    }

    /// The branch (`leaf` false) or leaf page `number`, expected at `level` (0 = root).
    pub(super) fn node_page(&self, number: u64, level: usize, leaf: bool) -> Checked<NodePage<'a>> {
        let (base, page) = self.page(number)?;
        let flags = u16_at(page, 10).unwrap_or_default() & !P_BOOKKEEPING;
        let is_leaf = match flags {
            P_BRANCH => false,
            P_LEAF => true,
            f if f & (P_LEAF2 | P_SUBP) != 0 && f & P_META == 0 => {
                return Err(Fault::Unsupported(format!(
                    "page {number} is a sorted-duplicates page (flags {f:#x})"
                )));
            }
            f => {
                return damaged(format!(
                    "page {number} has page flags {f:#x}, not a branch or leaf page"
                ));
            }
        };
        if is_leaf != leaf {
            let (is, want) = if is_leaf {
                ("leaf", "branch")
            } else {
                ("branch", "leaf")
            };
            return damaged(format!(
                "page {number} is a {is} page at level {level} of a {}-level tree, where a {want} \
                 page belongs",
                self.meta.depth
            ));
        }
        let lower = usize::from(u16_at(page, 12).unwrap_or_default());
        let upper = usize::from(u16_at(page, 14).unwrap_or_default());
        if lower < PAGE_HEADER || lower % 2 != 0 || lower > upper || upper > page.len() {
            return damaged(format!(
                "page {number}: free space {lower}..{upper} is not inside the \
                 {PAGE_HEADER}..{} page body",
                page.len()
            ));
        }
        let keys = (lower - PAGE_HEADER) / 2;
        if keys == 0 && (level > 0 || !leaf) {
            return damaged(format!("page {number} at level {level} holds no nodes"));
        }
        Ok(NodePage {
            number,
            page,
            base,
            nodes_from: upper,
            keys,
            leaf,
        })
    }

    /// The value of `size` bytes stored on the overflow pages from `first` on.
    fn overflow(&self, first: u64, size: usize) -> Checked<Range<usize>> {
        let (base, page) = self.page(first)?;
        let flags = u16_at(page, 10).unwrap_or_default() & !P_BOOKKEEPING;
        if flags != P_OVERFLOW {
            return damaged(format!(
                "page {first} has page flags {flags:#x} where an overflow page belongs"
            ));
        }
        let run = u64::from(u32_at(page, 12).unwrap_or_default());
        let needed = ((PAGE_HEADER - 1 + size) / self.meta.page_size + 1) as u64;
        let last = first.saturating_add(run).saturating_sub(1);
        if run < needed || last > self.meta.last_page {
            return damaged(format!(
                "overflow run of {run} pages at page {first} cannot hold {size} bytes within \
                 the tree's pages ..={}",
                self.meta.last_page
            ));
        }
        let start = base + PAGE_HEADER;
        match start.checked_add(size) {
            Some(end) if end <= self.bytes.len() => Ok(start..end),
            _ => damaged(format!(
                "a {size}-byte value on overflow pages from {first} runs past the end of the \
                 file ({} bytes): truncated",
                self.bytes.len()
            )),
        }
    }
}

/// A node's header fields and where its key ends (relative to the page).
struct Node {
    lo_hi: u32,
    flags: u16,
    key: Range<usize>,
}

impl<'a> NodePage<'a> {
    pub(super) fn keys(&self) -> usize {
        self.keys
    }

    pub(super) fn leaf(&self) -> bool {
        self.leaf
    }

    fn node(&self, index: usize) -> Checked<Node> {
        let number = self.number;
        let at = match u16_at(self.page, PAGE_HEADER + 2 * index) {
            Some(at) if index < self.keys => usize::from(at),
            _ => return damaged(format!("page {number}: no node {index}")),
        };
        if at < self.nodes_from || at + NODE_HEADER > self.page.len() {
            return damaged(format!(
                "page {number}: node {index} at offset {at} is outside the node area {}..{}",
                self.nodes_from,
                self.page.len()
            ));
        }
        let field = |o| u16_at(self.page, at + o).unwrap_or_default();
        let key_len = usize::from(field(6));
        let key_from = at + NODE_HEADER;
        if key_from + key_len > self.page.len() {
            return damaged(format!(
                "page {number}: node {index}'s {key_len}-byte key runs past the page end"
            ));
        }
        Ok(Node {
            lo_hi: u32::from(field(0)) | u32::from(field(2)) << 16,
            flags: field(4),
            key: key_from..key_from + key_len,
        })
    }

    /// The key of node `index` (a branch's node 0 has none that counts).
    pub(super) fn key(&self, index: usize) -> Checked<&'a [u8]> {
        let node = self.node(index)?;
        Ok(self.page.get(node.key).unwrap_or_default())
    }

    /// The page a branch's node `index` points to.
    pub(super) fn child(&self, index: usize) -> Checked<u64> {
        let node = self.node(index)?;
        Ok(u64::from(node.lo_hi) | u64::from(node.flags) << 32)
    }

    /// Leaf node `index` as ranges of the file.
    pub(super) fn entry(&self, tree: &Tree<'a>, index: usize) -> Checked<Entry> {
        let node = self.node(index)?;
        let number = self.number;
        let key = self.base + node.key.start..self.base + node.key.end;
        if node.flags & F_SUBDATA != 0 {
            return Err(Fault::Unsupported(format!(
                "page {number}: record {} is a named sub-database; Caffe2 DBs use only the \
                 unnamed database",
                tree.bytes.get(key).unwrap_or_default().escape_ascii()
            )));
        }
        if node.flags & F_DUPDATA != 0 {
            return Err(Fault::Unsupported(format!(
                "page {number}: record {} holds sorted duplicates; Caffe2 DBs have one value \
                 per key",
                tree.bytes.get(key).unwrap_or_default().escape_ascii()
            )));
        }
        if node.flags & !F_BIGDATA != 0 {
            return damaged(format!(
                "page {number}: node {index} has unknown flags {:#x}",
                node.flags
            ));
        }
        let size = node.lo_hi as usize;
        let value = if node.flags & F_BIGDATA != 0 {
            let Some(first) = u64_at(self.page, node.key.end) else {
                return damaged(format!(
                    "page {number}: node {index}'s overflow page number runs past the page end"
                ));
            };
            tree.overflow(first, size)?
        } else {
            if node.key.end + size > self.page.len() {
                return damaged(format!(
                    "page {number}: node {index}'s {size}-byte value runs past the page end"
                ));
            }
            self.base + node.key.end..self.base + node.key.end + size
        };
        Ok(Entry { key, value })
    }
}
