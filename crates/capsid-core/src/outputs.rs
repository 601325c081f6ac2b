//! The names of stage outputs that later stages find by name: what `capsid segment` writes for a
//! tomogram and the record beside them through which `capsid pick` finds the model. One place, so
//! that segment, pick, demo and report cannot drift apart.

/// `capsid segment`'s record of a run in its output folder (the model, window settings).
pub const SEGMENT_RECORD: &str = "segment.toml";

/// Ending of a label-map file name after the tomogram's name.
pub const LABEL_MAP_SUFFIX: &str = "_labels.mrc";

/// The label map `capsid segment` writes for tomogram `tomo`: `<tomo>_labels.mrc`.
pub fn label_map_file(tomo: &str) -> String {
    format!("{tomo}{LABEL_MAP_SUFFIX}")
}

/// The probability map of `class` for tomogram `tomo`: `<tomo>_prob_<class>.mrc`.
pub fn prob_map_file(tomo: &str, class: &str) -> String {
    format!("{tomo}_prob_{class}.mrc")
}

/// The tomogram a map of `capsid segment` was computed from, from the map's file stem (no
/// extension): `tomo_003_labels` → `tomo_003`, `tomo_003_prob_ribosome` → `tomo_003` when
/// `ribosome` is one of `classes`; any other stem is kept.
pub fn tomogram_of_map<'a>(stem: &str, classes: impl IntoIterator<Item = &'a str>) -> String {
    let label_stem = LABEL_MAP_SUFFIX.trim_end_matches(".mrc");
    if let Some(t) = stem.strip_suffix(label_stem).filter(|t| !t.is_empty()) {
        return t.to_string();
    }
    for c in classes {
        if let Some(t) = stem
            .strip_suffix(c)
            .and_then(|t| t.strip_suffix("_prob_"))
            .filter(|t| !t.is_empty())
        {
            return t.to_string();
        }
    }
    stem.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_their_inverse() {
        assert_eq!(label_map_file("tomo_003"), "tomo_003_labels.mrc");
        assert_eq!(prob_map_file("tomo_003", "tiny"), "tomo_003_prob_tiny.mrc");
        let classes = ["ribosome"];
        assert_eq!(tomogram_of_map("tomo_003_labels", classes), "tomo_003");
        assert_eq!(
            tomogram_of_map("tomo_003_prob_ribosome", classes),
            "tomo_003"
        );
        // Not a class of the table, or nothing left: kept as it is.
        assert_eq!(
            tomogram_of_map("tomo_003_prob_other", classes),
            "tomo_003_prob_other"
        );
        assert_eq!(tomogram_of_map("_labels", classes), "_labels");
        assert_eq!(tomogram_of_map("my_map", classes), "my_map");
    }
}
