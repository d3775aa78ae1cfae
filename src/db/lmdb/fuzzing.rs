//! The LMDB reader over bytes in memory, for fuzz targets (not a stable API).

use super::cursor::fault_error;
use super::format::{self, Tree};
use super::walk::Walk;
use crate::error::Result;

/// Reads `data_mdb` as the bytes of an LMDB `data.mdb`: walks every record from the first to
/// the end, then seeks each of `keys` and steps once past what it found, as a cursor on the
/// file would. Returns the number of records of the walk and the total length of their keys
/// and values (so a caller can check the reader touched them). A damaged file gives the
/// status a DB cursor would give (C2RS_PARSE_ERROR or C2RS_UNSUPPORTED), naming "<memory>".
pub fn read_data_mdb(data_mdb: &[u8], keys: &[&[u8]]) -> Result<(usize, usize)> {
    let file = "<memory>";
    let meta = format::pick_meta(data_mdb, None).map_err(|f| fault_error(file, f))?;
    let tree = Tree::new(data_mdb, meta);
    let mut walk = Walk::default();
    walk.first(&tree).map_err(|f| fault_error(file, f))?;
    let (mut records, mut bytes) = (0, 0);
    while let Some(entry) = walk.entry() {
        records += 1;
        bytes += entry.key.len() + entry.value.len();
        walk.next(&tree).map_err(|f| fault_error(file, f))?;
    }
    for key in keys {
        walk.seek(&tree, key).map_err(|f| fault_error(file, f))?;
        walk.next(&tree).map_err(|f| fault_error(file, f))?;
    }
    Ok((records, bytes))
}
