//! The LMDB reader over bytes in memory, for fuzz targets (not a stable API).

use std::ops::Range;

use super::cursor::fault_error;
use super::format::{self, Tree};
use super::walk::Walk;
use crate::error::Result;

/// Reads `data_mdb` as the bytes of an LMDB `data.mdb`: walks every record from the first to
/// the end, then seeks each of `keys`, and then the first and the last key the walk found,
/// just past the first and half of the first, stepping once past what each seek found, as a
/// cursor on the file would. Returns the number of records of the walk and the total length
/// of their keys and values (so a caller can check the reader touched them). A damaged file
/// gives the status a DB cursor would give (C2RS_PARSE_ERROR or C2RS_UNSUPPORTED), naming
/// "<memory>".
pub fn read_data_mdb(data_mdb: &[u8], keys: &[&[u8]]) -> Result<(usize, usize)> {
    let file = "<memory>";
    let meta = format::pick_meta(data_mdb, None).map_err(|f| fault_error(file, f))?;
    let tree = Tree::new(data_mdb, meta);
    let mut walk = Walk::default();
    walk.first(&tree).map_err(|f| fault_error(file, f))?;
    let (mut records, mut bytes) = (0, 0);
    let (mut first, mut last): (Option<Range<usize>>, Option<Range<usize>>) = (None, None);
    while let Some(entry) = walk.entry() {
        records += 1;
        bytes += entry.key.len() + entry.value.len();
        first.get_or_insert_with(|| entry.key.clone());
        last = Some(entry.key.clone());
        walk.next(&tree).map_err(|f| fault_error(file, f))?;
    }
    let key_of = |r: &Option<Range<usize>>| r.clone().and_then(|r| data_mdb.get(r));
    let mut found: Vec<Vec<u8>> = Vec::new();
    if let (Some(first), Some(last)) = (key_of(&first), key_of(&last)) {
        found.push(first.to_vec());
        found.push(last.to_vec());
        found.push([first, &[0]].concat());
        found.push(first[..first.len() / 2].to_vec());
    }
    for key in keys.iter().copied().chain(found.iter().map(Vec::as_slice)) {
        walk.seek(&tree, key).map_err(|f| fault_error(file, f))?;
        walk.next(&tree).map_err(|f| fault_error(file, f))?;
    }
    Ok((records, bytes))
}
