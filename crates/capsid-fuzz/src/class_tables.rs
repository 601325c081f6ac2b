//! The class-table target: TOML parsed, written back and its radii computed.

use crate::Scratch;
use capsid_core::ClassTable;
use std::path::Path;

pub(crate) fn run_class_table(_: &Scratch, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(t) = ClassTable::from_toml_str(&text, Path::new("classes.toml")) {
        let _ = t.to_toml_string();
        for c in &t.classes {
            let _ = c.radius_voxels(10.0);
            let _ = c.radius_voxels(0.0);
        }
    }
}

const CLASSES: &str = "[[class]]\nname = \"ribosome\"\nlabel = 1\nradius_a = 150.0\n\n\
[[class]]\nname = \"rubisco\"\nlabel = 2\nradius_vox = 3.0\n";

/// The class table the particle targets use (ribosome = 1, rubisco = 2).
pub fn class_table() -> ClassTable {
    ClassTable::from_toml_str(CLASSES, Path::new("classes.toml")).expect("built-in class table")
}

pub(crate) fn seeds_class_table() -> Vec<Vec<u8>> {
    vec![
        CLASSES.as_bytes().to_vec(),
        b"[[class]]\nname = \"a\"\nlabel = 255\nradius_vox = 1e30\ntemplate = \"t.mrc\"\n".to_vec(),
    ]
}
