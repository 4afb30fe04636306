//! The ballast file: space reserved in the data directory's filesystem that an operator can
//! delete to get a node whose disk filled up going again (as CockroachDB's `EMERGENCY_BALLAST`).
//!
//! A full disk stops the ranges whose writes failed, and the node exits (see
//! `Node::storage_failure`); restarting it needs some free space for the log replay and the first
//! flushes. Deleting `<data-dir>/ballast` frees that space at once, without touching data.
//!
//! The file is allocated with `fallocate`, so its blocks are really reserved (not a sparse file),
//! at the start of a node whose directory lacks it, and only when the filesystem has at least
//! twice its size free: a node is never refused for want of ballast space (it warns instead).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The ballast's file name in the data directory.
pub const FILE_NAME: &str = "ballast";

/// The automatic size's cap.
const MAX_AUTO: u64 = 256 << 20;

/// The ballast's path in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The automatic size for a filesystem of `total` bytes: 1%, at most 256 MiB.
pub fn auto_size(total: u64) -> u64 {
    (total / 100).min(MAX_AUTO)
}

/// Total and available bytes of the filesystem holding `dir`.
fn filesystem_space(dir: &Path) -> Result<(u64, u64)> {
    let st = rustix::fs::statvfs(dir)
        .with_context(|| format!("reading the free space of {}", dir.display()))?;
    let block = st.f_frsize.max(1);
    Ok((st.f_blocks * block, st.f_bavail * block))
}

/// Creates the ballast in `data_dir` if it is missing: `size` bytes, or the automatic size when
/// None; nothing for `Some(0)`. Returns the size of the ballast now present (0 when none).
pub fn ensure(data_dir: &Path, size: Option<u64>) -> Result<u64> {
    let file = path(data_dir);
    if let Ok(meta) = std::fs::metadata(&file) {
        return Ok(meta.len());
    }
    let (total, available) = filesystem_space(data_dir)?;
    let size = size.unwrap_or_else(|| auto_size(total));
    if size == 0 {
        return Ok(0);
    }
    if available < size.saturating_mul(2) {
        tracing::warn!(
            size,
            available,
            "not enough free space for the ballast file {}; running without one",
            file.display()
        );
        return Ok(0);
    }
    let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
    let f = std::fs::File::create(&tmp)
        .with_context(|| format!("creating the ballast file {}", tmp.display()))?;
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, size)
        .with_context(|| format!("allocating {size} bytes for the ballast file"))?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &file)?;
    tracing::info!(
        size,
        "created the ballast file {}: delete it to free space if the disk fills up",
        file.display()
    );
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_size_is_one_percent_capped() {
        assert_eq!(auto_size(48 << 20), (48 << 20) / 100);
        assert_eq!(auto_size(1 << 40), MAX_AUTO);
    }

    #[test]
    fn ballast_is_allocated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ensure(dir.path(), Some(0)).unwrap(), 0);
        assert!(!path(dir.path()).exists());
        assert_eq!(ensure(dir.path(), Some(1 << 20)).unwrap(), 1 << 20);
        let meta = std::fs::metadata(path(dir.path())).unwrap();
        assert_eq!(meta.len(), 1 << 20);
        // Really allocated: at least its size in 512-byte blocks.
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 >= 1 << 20, "{} blocks", meta.blocks());
        // Present: kept as it is, whatever size is asked.
        assert_eq!(ensure(dir.path(), Some(4 << 20)).unwrap(), 1 << 20);
    }
}
