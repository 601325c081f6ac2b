//! The MRC target: header, slab, block and whole-volume reads of a scratch file, seeded with
//! small volumes in every written mode, plain and gzip-compressed.

use crate::Scratch;
use capsid_io::mrc::{self, MrcMode};
use std::io::Write;

pub(crate) fn run_mrc(s: &Scratch, bytes: &[u8]) {
    let p = s.file("f.mrc", bytes);
    if let Ok(h) = mrc::read_header(&p) {
        let _ = h.shape_zyx();
        let _ = h.data_len();
        let _ = mrc::read_slab(&p, 0, 1);
        let _ = mrc::read_block(&p, 0, 1, 0, 1);
        if let Ok(v) = mrc::read_volume(&p) {
            // What the commands do next: statistics and a label-map view.
            let _ = capsid_core::volume::stats(v.data.iter().map(|&x| x as f64));
        }
    }
}

pub(crate) fn seeds_mrc() -> Vec<Vec<u8>> {
    let s = Scratch::new();
    let mut out = Vec::new();
    let data = ndarray::Array3::from_shape_fn((3, 4, 5), |(z, y, x)| (z * 20 + y * 5 + x) as f32);
    let vol = capsid_core::Volume::new(data, 10.0);
    for mode in [
        MrcMode::Float32,
        MrcMode::Int16,
        MrcMode::Uint16,
        MrcMode::Float16,
        MrcMode::Int8,
    ] {
        let p = s.dir.path().join("seed.mrc");
        if mrc::write_volume(&p, &vol, mode).is_ok() {
            let bytes = std::fs::read(&p).expect("seed");
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&bytes).expect("gzip");
            out.push(gz.finish().expect("gzip"));
            out.push(bytes);
        }
    }
    out
}
