//! Validation: [`SimConfig::validate`] checks every field and says which one is wrong and why.

use super::SimConfig;
use crate::error::SimError;
use crate::library::BUILTIN_CLASSES;

impl SimConfig {
    /// Checks every field; the error says which one and why.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Config(m));
        let [nz, ny, nx] = self.shape_zyx;
        if nz < 4 || ny < 8 || nx < 8 {
            return bad(format!(
                "shape_zyx {:?} is too small (at least 4 × 8 × 8)",
                self.shape_zyx
            ));
        }
        if nz * ny * nx > 1 << 31 {
            return bad(format!(
                "shape_zyx {:?} has more than 2^31 voxels",
                self.shape_zyx
            ));
        }
        if !(self.voxel_size_a > 0.0 && self.voxel_size_a.is_finite()) {
            return bad(format!(
                "voxel_size_a must be positive, got {}",
                self.voxel_size_a
            ));
        }
        if self.slab_thickness_vox == 0 || self.slab_thickness_vox > nz {
            return bad(format!(
                "slab_thickness_vox must be 1..={nz} (the tomogram's z size), got {}",
                self.slab_thickness_vox
            ));
        }
        if !(0.0..=1.0).contains(&self.solvent_density) {
            return bad(format!(
                "solvent_density must be in 0..1 (protein = 1), got {}",
                self.solvent_density
            ));
        }
        if self.tomograms == 0 || self.tomograms > 10_000 {
            return bad(format!(
                "tomograms must be 1..=10000, got {}",
                self.tomograms
            ));
        }
        if !(self.resolution_a >= 0.0 && self.resolution_a.is_finite()) {
            return bad(format!(
                "resolution_a must be ≥ 0, got {}",
                self.resolution_a
            ));
        }
        if !(self.mask_fraction > 0.0 && self.mask_fraction < 1.0) {
            return bad(format!(
                "mask_fraction must be in (0, 1), got {}",
                self.mask_fraction
            ));
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1".into());
        }
        if self.classes.is_empty() {
            return bad("no [[class]] given".into());
        }
        if self.classes.len() > 255 {
            return bad("at most 255 classes".into());
        }
        if self.classes.iter().all(|c| c.decoy) {
            return bad("every class is a decoy: at least one labelled class is needed".into());
        }
        let mut names = std::collections::HashSet::new();
        for c in &self.classes {
            if c.name.is_empty() || c.name.chars().any(|ch| ch.is_whitespace() || ch == ',') {
                return bad(format!(
                    "class name '{}' must be non-empty without spaces or commas",
                    c.name
                ));
            }
            if !names.insert(c.name.as_str()) {
                return bad(format!("class name '{}' appears twice", c.name));
            }
            let sources = [
                c.builtin.is_some(),
                c.model.is_some(),
                c.map.is_some(),
                c.scrambled_from.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if sources != 1 {
                return bad(format!(
                    "class '{}': give exactly one of builtin, model, map, scrambled_from",
                    c.name
                ));
            }
            if let Some(o) = &c.scrambled_from {
                match self.classes.iter().find(|d| &d.name == o) {
                    Some(d) if d.builtin.is_some() || d.model.is_some() => {}
                    Some(_) => {
                        return bad(format!(
                            "class '{}': scrambled_from '{o}' must name a builtin or model class",
                            c.name
                        ))
                    }
                    None => {
                        return bad(format!(
                            "class '{}': scrambled_from names no class '{o}' of this config",
                            c.name
                        ))
                    }
                }
            }
            if let Some(t) = c.shell_a {
                if !(t > 0.0 && t.is_finite()) {
                    return bad(format!(
                        "class '{}': shell_a must be positive, got {t}",
                        c.name
                    ));
                }
            }
            if let Some(b) = &c.builtin {
                if !BUILTIN_CLASSES.contains(&b.as_str()) {
                    return bad(format!(
                        "class '{}': unknown built-in '{b}' (known: {})",
                        c.name,
                        BUILTIN_CLASSES.join(", ")
                    ));
                }
            }
            match (c.count, c.concentration_um) {
                (Some(_), Some(_)) => {
                    return bad(format!(
                        "class '{}': give count or concentration_um, not both",
                        c.name
                    ))
                }
                (None, None) => {
                    return bad(format!(
                        "class '{}': count or concentration_um is missing",
                        c.name
                    ))
                }
                (None, Some(u)) if !(u >= 0.0 && u.is_finite()) => {
                    return bad(format!(
                        "class '{}': concentration_um must be ≥ 0, got {u}",
                        c.name
                    ))
                }
                _ => {}
            }
            if let Some(v) = c.map_voxel_size_a {
                if !(v > 0.0 && v.is_finite()) {
                    return bad(format!(
                        "class '{}': map_voxel_size_a must be positive, got {v}",
                        c.name
                    ));
                }
            }
        }
        let t = &self.tilt;
        if !(t.step_deg > 0.0 && t.min_deg <= t.max_deg && t.min_deg > -90.0 && t.max_deg < 90.0) {
            return bad(format!(
                "tilt range {}..{} step {} must lie within (-90, 90) with min ≤ max and step > 0",
                t.min_deg, t.max_deg, t.step_deg
            ));
        }
        if (t.max_deg - t.min_deg) / t.step_deg > 1000.0 {
            return bad("more than 1000 tilts".into());
        }
        let c = &self.ctf;
        if c.enabled
            && !(c.defocus_um.is_finite()
                && c.voltage_kv > 0.0
                && c.cs_mm >= 0.0
                && (0.0..1.0).contains(&c.amplitude_contrast)
                && c.bfactor_a2 >= 0.0)
        {
            return bad(
                "ctf: voltage_kv > 0, cs_mm ≥ 0, amplitude_contrast in [0, 1), bfactor_a2 ≥ 0"
                    .into(),
            );
        }
        if self.noise.enabled && !(self.noise.snr > 0.0 && self.noise.snr.is_finite()) {
            return bad(format!(
                "noise.snr must be positive, got {}",
                self.noise.snr
            ));
        }
        let r = &self.reconstruction;
        if !(r.radial_cutoff > 0.0 && r.radial_cutoff <= 0.5 && r.radial_falloff >= 0.0) {
            return bad(
                "reconstruction.radial_cutoff must be in (0, 0.5], radial_falloff ≥ 0".into(),
            );
        }
        let v = &self.vesicles;
        if v.count > 0 && !(v.radius_min_a > 0.0 && v.radius_min_a <= v.radius_max_a) {
            return bad("vesicles: 0 < radius_min_a ≤ radius_max_a".into());
        }
        let g = &self.gold;
        if g.count > 0 && !(g.radius_a > 0.0 && g.density > 0.0) {
            return bad("gold: radius_a and density must be positive".into());
        }
        Ok(())
    }
}
