//! Inputs are never outputs: canonical paths (also of outputs that do not exist yet) and
//! (device, inode) identity, compared between every output and every input.

use super::invalid;
use crate::error::CoreError;
use std::path::{Component, Path, PathBuf};

/// The canonical form of `p`; for a path that does not exist yet, its deepest existing ancestor
/// canonicalised with the rest appended (`..` and `.` resolved lexically there).
pub fn canonical_or_parent(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    // Find the deepest existing ancestor.
    let mut tail: Vec<std::ffi::OsString> = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            let mut out = c;
            for part in tail.iter().rev() {
                out.push(part);
            }
            return normalize(&out);
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                cur = parent;
            }
            _ => return normalize(&abs),
        }
    }
}

/// Resolves `.` and `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(unix)]
fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_p: &Path) -> Option<(u64, u64)> {
    None
}

/// True when `a` and `b` name the same file or folder (same canonical path, or same device and
/// inode, which also catches hard links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Some(x), Some(y)) = (file_id(a), file_id(b)) {
        if x == y {
            return true;
        }
    }
    canonical_or_parent(a) == canonical_or_parent(b)
}

/// Refuses outputs that would overwrite an input: an output that is an input (same canonical
/// path, or same device and inode), or an output folder that holds an input. Inputs that do not
/// exist are skipped (their reader reports them). The error names both paths.
pub fn refuse_overwriting_inputs(outputs: &[&Path], inputs: &[&Path]) -> Result<(), CoreError> {
    for out in outputs {
        let out_c = canonical_or_parent(out);
        let out_id = file_id(out);
        for inp in inputs {
            if !inp.exists() {
                continue;
            }
            let in_c = canonical_or_parent(inp);
            let same = in_c == out_c || (out_id.is_some() && out_id == file_id(inp));
            if same {
                return Err(invalid(format!(
                    "{}: the output would overwrite the input {}; choose another output name",
                    out.display(),
                    inp.display()
                )));
            }
            if in_c.starts_with(&out_c) {
                return Err(invalid(format!(
                    "{}: this output folder holds the input {}; choose another output folder (inputs are never overwritten)",
                    out.display(),
                    inp.display()
                )));
            }
        }
    }
    Ok(())
}

/// Refuses two outputs of one command that are the same file.
pub fn refuse_duplicate_outputs(outputs: &[&Path]) -> Result<(), CoreError> {
    for (i, a) in outputs.iter().enumerate() {
        for b in &outputs[i + 1..] {
            if same_file(a, b) {
                return Err(invalid(format!(
                    "{}: given as two different outputs ({}); choose distinct names",
                    a.display(),
                    b.display()
                )));
            }
        }
    }
    Ok(())
}
