//! MRC2014 / CCP4 volumes.
//!
//! Reading ([`read_volume`], [`read_header`], [`read_slab`]):
//! * modes 0 (int8, or uint8 when IMOD's stamp 1146047817 and flag bit 0 say so), 1 (int16),
//!   2 (float32), 6 (uint16), 12 (float16); others (3, 4 complex, 101 packed, ...) are refused
//!   with an error naming the file and the mode;
//! * either byte order (MACHST `44 44`/`44 41` little, `11 11` big; files without a stamp are
//!   guessed from the mode field), old headers without the `MAP ` stamp when sizes match;
//! * gzip compression, detected by magic bytes (any extension: .mrc.gz, .map.gz, ...); bzip2 is
//!   refused with a message saying to decompress it first;
//! * the extended header (NSYMBT bytes) is skipped and kept in [`MrcHeader::ext_header`];
//! * permuted axes (MAPC/MAPR/MAPS ≠ 1, 2, 3, e.g. CCP4 maps): data are transposed so the
//!   returned volume is always `[z, y, x]` along the physical axes — the values one gets from
//!   mrcfile's array after `numpy.transpose` into z, y, x order (as GridDataFormats does);
//! * voxel size `cella / (mx, my, mz)` per axis, 0 where either is 0; origin from ORIGIN;
//! * NaN / infinite float values are refused (error naming the file, count and first position)
//!   unless [`ReadOptions::allow_non_finite`] is set;
//! * the file length must equal header + extended header + data exactly.
//!
//! Writing ([`write_volume`], [`write_labels`], [`MrcWriter`]): little-endian MRC2014 (`MAP `,
//! MACHST `44 44 00 00`, NVERSION 20141, MAPC/MAPR/MAPS 1 2 3, cella = n × voxel size,
//! DMIN/DMAX/DMEAN/RMS accumulated in f64, ISPG 1, label `capsid <version>`), always through a
//! temporary file renamed into place.

mod header;
mod read;
mod write;

pub use header::{DataType, MrcHeader, HEADER_LEN, IMOD_STAMP, NVERSION};
pub use read::{
    band_origin, decode as decode_voxels, read_block, read_block_with, read_header, read_label_map,
    read_mrc, read_slab, read_slab_with, read_volume, read_volume_with, ReadOptions,
};
pub use write::{
    write_labels, write_labels_with, write_volume, write_volume_like, write_volume_with, LabelMode,
    MrcMode, MrcWriter, WriteOptions,
};
