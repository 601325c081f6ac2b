//! The model targets: PDB and mmCIF files through the simulator's model loader.

use crate::Scratch;

pub(crate) fn run_model(s: &Scratch, bytes: &[u8], name: &str) {
    let p = s.file(name, bytes);
    let _ = capsid_sim::library::model_blobs(&p);
}

pub(crate) const PDB: &str = "\
HEADER    TEST
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N
ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00  0.00           C
ATOM      3  C   ALA A   1      13.148   5.853  -5.100  1.00  0.00           C
ATOM      4  O   ALA A   1      13.725   5.381  -6.079  1.00  0.00           O
HETATM    5 FE   HEM A   2      10.000  10.000  10.000  0.50  0.00          FE
END
";

pub(crate) const MMCIF: &str = "\
data_test
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.type_symbol
_atom_site.label_atom_id
_atom_site.label_alt_id
_atom_site.label_comp_id
_atom_site.label_asym_id
_atom_site.label_entity_id
_atom_site.label_seq_id
_atom_site.pdbx_PDB_ins_code
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.occupancy
_atom_site.B_iso_or_equiv
_atom_site.auth_seq_id
_atom_site.auth_asym_id
_atom_site.pdbx_PDB_model_num
ATOM 1 N N . ALA A 1 1 ? 11.104 6.134 -6.504 1.00 0.00 1 A 1
ATOM 2 C CA . ALA A 1 1 ? 11.639 6.071 -5.147 1.00 0.00 1 A 1
ATOM 3 O O . ALA A 1 1 ? 13.725 5.381 -6.079 1.00 0.00 1 A 1
";
