//! What the crypto test binaries share.

use std::fs;
use std::path::Path;

/// The names in `dir`, sorted: what a failed or finished write left behind.
pub(crate) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
