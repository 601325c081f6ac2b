//! Config files: reading TOML over a preset, and writing the resolved config back as TOML.

use super::SimConfig;
use crate::error::SimError;
use std::path::Path;

impl SimConfig {
    /// Reads a TOML config. Fields it omits keep the values of the preset it names
    /// (`preset = "tiny"`), or of [`SimConfig::default`] when it names none.
    pub fn load(path: &Path) -> Result<SimConfig, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses TOML text (see [`SimConfig::load`]); `origin` names the source in errors. Relative
    /// model and map paths are resolved against the file's folder.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<SimConfig, SimError> {
        let err = |message: String| SimError::ConfigFile {
            path: origin.to_path_buf(),
            message,
        };
        let value: toml::Table = toml::from_str(text).map_err(|e| err(e.message().to_string()))?;
        let preset = match value.get("preset") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => return Err(err("preset must be a string".into())),
            None => "default".into(),
        };
        let base = SimConfig::preset(&preset).map_err(|e| err(e.to_string()))?;
        let mut merged = toml::Value::try_from(&base).map_err(|e| err(e.to_string()))?;
        if let toml::Value::Table(t) = &mut merged {
            merge_tables(t, value);
        }
        let mut cfg: SimConfig = merged
            .try_into()
            .map_err(|e: toml::de::Error| err(e.message().to_string()))?;
        let dir = origin.parent().unwrap_or(Path::new(""));
        for c in &mut cfg.classes {
            for p in [&mut c.model, &mut c.map].into_iter().flatten() {
                if p.is_relative() && !dir.as_os_str().is_empty() {
                    *p = dir.join(&*p);
                }
            }
        }
        cfg.validate().map_err(|e| match e {
            SimError::Config(m) => err(m),
            other => other,
        })?;
        Ok(cfg)
    }

    /// The config as TOML text.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// Overwrites `base` with `over`, recursing into tables (arrays such as `class` are replaced).
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_its_preset() {
        let cfg = SimConfig::from_toml_str(
            "preset = 'tiny'\nseed = 9\n[noise]\nsnr = 0.1\n",
            Path::new("a.toml"),
        )
        .unwrap();
        assert_eq!(cfg.shape_zyx, [48, 96, 96]);
        assert_eq!(cfg.seed, 9);
        assert_eq!(cfg.noise.snr, 0.1);
        assert!(cfg.noise.enabled);
    }

    #[test]
    fn bad_configs_name_file_and_field() {
        for (text, needle) in [
            ("slab_thickness_vox = 0", "slab_thickness_vox"),
            ("colour = 1", "unknown field"),
            (
                "[[class]]\nname = 'a'\nbuiltin = 'ribosome'\nmodel = 'x.pdb'\ncount = 1",
                "exactly one",
            ),
            (
                "[[class]]\nname = 'a'\nbuiltin = 'ribosome'",
                "count or concentration_um",
            ),
            ("[tilt]\nmin_deg = -95.0", "tilt range"),
            ("[noise]\nsnr = 0.0", "snr"),
        ] {
            let e = SimConfig::from_toml_str(text, Path::new("bad.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("bad.toml") && e.contains(needle), "{text}: {e}");
        }
    }
}
