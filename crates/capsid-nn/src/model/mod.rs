//! The two networks behind one type.
//!
//! [`NetConfig`] (serde; TOML `model = "unet"` or `model = "ucaps"` plus that network's fields)
//! builds a [`Net`]; [`Net::forward`] maps a patch `[B, 1, z, y, x]` to [`NetOutput`]. A trained
//! network is stored as a model folder: [`CONFIG_FILE`] (the `NetConfig` as TOML) and
//! [`WEIGHTS_FILE`] (Burn's burnpack format), see [`save_model_folder`] / [`load_model_folder`].

pub mod capsule;
pub mod fastconv;
pub mod init;
pub mod ops;
pub mod ucaps;
pub mod unet;

#[cfg(test)]
mod overfit_tests;

pub use ucaps::{UCaps3d, UCapsConfig};
pub use unet::{UNet3d, UNetConfig};

use crate::NnError;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};
use init::InitRng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// File name of the network config inside a model folder.
pub const CONFIG_FILE: &str = "net.toml";
/// File name of the weights (burnpack) inside a model folder.
pub const WEIGHTS_FILE: &str = "weights.bpk";

/// Which network, with its settings. Serialised with a `model` tag:
/// `model = "unet"` / `model = "ucaps"` followed by the fields of [`UNetConfig`] /
/// [`UCapsConfig`] (all optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum NetConfig {
    /// DeepFinder's 3D-UNet.
    Unet(UNetConfig),
    /// 3D-UCaps.
    Ucaps(UCapsConfig),
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig::Ucaps(UCapsConfig::default())
    }
}

impl NetConfig {
    /// The default configuration of `name` ("unet" or "ucaps") with `num_classes` classes
    /// (background included).
    pub fn by_name(name: &str, num_classes: usize) -> Result<Self, NnError> {
        match name.to_ascii_lowercase().as_str() {
            "unet" | "unet3d" => Ok(NetConfig::Unet(UNetConfig { num_classes })),
            "ucaps" | "ucaps3d" => Ok(NetConfig::Ucaps(UCapsConfig {
                num_classes,
                ..Default::default()
            })),
            other => Err(NnError::Config(format!(
                "unknown model '{other}' (expected unet or ucaps)"
            ))),
        }
    }

    /// "unet" or "ucaps".
    pub fn name(&self) -> &'static str {
        match self {
            NetConfig::Unet(_) => "unet",
            NetConfig::Ucaps(_) => "ucaps",
        }
    }

    /// Classes including background.
    pub fn num_classes(&self) -> usize {
        match self {
            NetConfig::Unet(c) => c.num_classes,
            NetConfig::Ucaps(c) => c.num_classes,
        }
    }

    /// Sets the number of classes (background included).
    pub fn set_num_classes(&mut self, n: usize) {
        match self {
            NetConfig::Unet(c) => c.num_classes = n,
            NetConfig::Ucaps(c) => c.num_classes = n,
        }
    }

    /// Patch sizes along z, y, x must be multiples of this (4 for the UNet, 2^levels for UCaps).
    pub fn size_multiple(&self) -> usize {
        match self {
            NetConfig::Unet(_) => 4,
            NetConfig::Ucaps(c) => c.size_multiple(),
        }
    }

    /// Downsampling factor of the class capsules relative to the input (UCaps only).
    pub fn capsule_downsampling(&self) -> Option<usize> {
        match self {
            NetConfig::Unet(_) => None,
            NetConfig::Ucaps(c) => Some(c.size_multiple()),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), NnError> {
        match self {
            NetConfig::Unet(c) if c.num_classes < 2 => Err(NnError::Config(format!(
                "num_classes = {} (need at least 2, background included)",
                c.num_classes
            ))),
            NetConfig::Unet(_) => Ok(()),
            NetConfig::Ucaps(c) => c.validate().map_err(NnError::Config),
        }
    }

    /// Checks that a patch of `shape_zyx` can go through the network.
    pub fn check_patch(&self, shape_zyx: [usize; 3]) -> Result<(), NnError> {
        let m = self.size_multiple();
        if shape_zyx.iter().any(|&s| s == 0 || s % m != 0) {
            return Err(NnError::Shape {
                shape: shape_zyx.to_vec(),
                reason: format!(
                    "{} needs z, y, x sizes that are positive multiples of {m}",
                    self.name()
                ),
            });
        }
        Ok(())
    }

    /// Parses the TOML form.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The TOML form.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("NetConfig serialises to TOML")
    }
}

/// What a forward pass returns.
pub struct NetOutput {
    /// Class logits `[B, C, z, y, x]` (softmax over C gives probabilities).
    pub logits: Tensor<5>,
    /// Reconstruction of the input `[B, 1, z, y, x]`, before the sigmoid (UCaps only).
    pub recon: Option<Tensor<5>>,
    /// Lengths of the class capsules `[B, C, z/8, y/8, x/8]` (UCaps only; /4 for 2 levels).
    pub capsule_lengths: Option<Tensor<5>>,
}

/// One of the two networks.
#[derive(Module, Debug)]
pub enum Net {
    Unet(UNet3d),
    Ucaps(UCaps3d),
}

impl Net {
    /// Builds the network of `cfg` with weights drawn from seed 0. Panics on an invalid config;
    /// use [`Net::try_init`] for user input.
    pub fn init(cfg: &NetConfig, device: &Device) -> Net {
        Self::init_seeded(cfg, device, 0)
    }

    /// Builds the network with weights drawn from `seed` (same seed, same weights, any device).
    /// Panics on an invalid config.
    pub fn init_seeded(cfg: &NetConfig, device: &Device, seed: u64) -> Net {
        Self::try_init(cfg, device, seed).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the network after validating `cfg`.
    pub fn try_init(cfg: &NetConfig, device: &Device, seed: u64) -> Result<Net, NnError> {
        cfg.validate()?;
        let mut rng = InitRng::new(seed);
        Ok(match cfg {
            NetConfig::Unet(c) => Net::Unet(UNet3d::new(c, &mut rng, device)),
            NetConfig::Ucaps(c) => Net::Ucaps(UCaps3d::new(c, &mut rng, device)),
        })
    }

    /// Forward pass of `x` `[B, 1, z, y, x]` (sizes multiples of [`NetConfig::size_multiple`]).
    ///
    /// On an autodiff device the UCaps batch norms use batch statistics (training); on a plain
    /// device, or after `valid()`, their running statistics.
    pub fn forward(&self, x: Tensor<5>) -> NetOutput {
        match self {
            Net::Unet(net) => NetOutput {
                logits: net.forward(x),
                recon: None,
                capsule_lengths: None,
            },
            Net::Ucaps(net) => {
                let out = net.forward(x);
                NetOutput {
                    logits: out.logits,
                    recon: out.recon,
                    capsule_lengths: Some(out.capsule_lengths),
                }
            }
        }
    }

    /// The encoder's deepest features of `x` `[B, 1, z, y, x]`, on a grid
    /// [`NetConfig::size_multiple`] times coarser than the input: the UNet's bottleneck
    /// `[B, 64, z/4, y/4, x/4]`; 3D-UCaps' class capsules flattened to `[B, C·64, z/2^levels, …]`
    /// (capsule-major: channel `c·64 + a` is atom `a` of class capsule `c`, whose length is the
    /// class's existence probability and whose direction the seed calls its pose).
    pub fn encoder_features(&self, x: Tensor<5>) -> Tensor<5> {
        match self {
            Net::Unet(net) => {
                let [_, _, bottleneck] = net.encode(x);
                bottleneck
            }
            Net::Ucaps(net) => {
                let (_, layers) = net.encode(x);
                let caps = layers
                    .last()
                    .cloned()
                    .expect("the encoder has at least one capsule layer");
                let [b, c, a, d, h, w] = caps.dims();
                caps.reshape([b, c * a, d, h, w])
            }
        }
    }

    /// Trainable parameters (as PyTorch counts them: batch-norm running statistics excluded).
    pub fn num_params(&self) -> usize {
        let all = Module::num_params(self);
        match self {
            Net::Unet(_) => all,
            Net::Ucaps(net) => all - net.running_stat_values(),
        }
    }

    /// Writes the weights (with batch-norm running statistics) to `path` in Burn's burnpack
    /// format, atomically.
    pub fn save(&self, path: &Path) -> Result<(), NnError> {
        let bytes = self
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| NnError::Model {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        capsid_core::write_atomically(path, |w| w.write_all(&bytes)).map_err(|e| NnError::Model {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Builds the network of `cfg` on `device` and loads the weights saved at `path`.
    pub fn load(cfg: &NetConfig, path: &Path, device: &Device) -> Result<Net, NnError> {
        let net = Self::try_init(cfg, device, 0)?;
        let bytes = std::fs::read(path).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let model_err = |reason: String| NnError::Model {
            path: path.to_path_buf(),
            reason,
        };
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| model_err(format!("not a capsid weights file: {e}")))?;
        net.try_load_record(record).map_err(|e| {
            model_err(format!(
                "weights do not match the {} configuration: {e}",
                cfg.name()
            ))
        })
    }
}

/// Writes a model folder: `dir/net.toml` and `dir/weights.bpk` (creating `dir`).
pub fn save_model_folder(dir: &Path, cfg: &NetConfig, net: &Net) -> Result<(), NnError> {
    std::fs::create_dir_all(dir).map_err(|source| NnError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let cfg_path = dir.join(CONFIG_FILE);
    let text = cfg.to_toml();
    capsid_core::write_atomically(&cfg_path, |w| w.write_all(text.as_bytes())).map_err(|e| {
        NnError::Model {
            path: cfg_path.clone(),
            reason: e.to_string(),
        }
    })?;
    net.save(&dir.join(WEIGHTS_FILE))
}

/// Reads a model folder written by [`save_model_folder`].
pub fn load_model_folder(dir: &Path, device: &Device) -> Result<(NetConfig, Net), NnError> {
    let cfg_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path).map_err(|source| NnError::Io {
        path: cfg_path.clone(),
        source,
    })?;
    let cfg = NetConfig::from_toml(&text).map_err(|reason| NnError::Model {
        path: cfg_path.clone(),
        reason,
    })?;
    let net = Net::load(&cfg, &dir.join(WEIGHTS_FILE), device)?;
    Ok((cfg, net))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::random_batch;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Parameter counts of `shared/bench/torch_reference.py` (printed by PyTorch's
    /// `sum(p.numel() for p in net.parameters())`).
    #[test]
    fn unet_parameter_count_equals_reference() {
        let device = Device::flex();
        for (c, want) in [(2, 902_994), (4, 903_060)] {
            let cfg = NetConfig::by_name("unet", c).unwrap();
            assert_eq!(Net::init(&cfg, &device).num_params(), want, "C = {c}");
            assert_eq!(UNetConfig { num_classes: c }.expected_params(), want);
        }
    }

    #[test]
    fn ucaps_parameter_count_equals_reference() {
        let device = Device::flex();
        for (c, want) in [(2, 2_992_405), (4, 3_365_527)] {
            let cfg = NetConfig::by_name("ucaps", c).unwrap();
            assert_eq!(Net::init(&cfg, &device).num_params(), want, "C = {c}");
        }
    }

    #[test]
    fn output_shapes() {
        let device = Device::flex();
        let (x, _) = random_batch(2, 16, 3, 0, &device);
        let unet = Net::init(&NetConfig::by_name("unet", 3).unwrap(), &device);
        let out = unet.forward(x.clone());
        assert_eq!(out.logits.dims(), [2, 3, 16, 16, 16]);
        assert!(out.recon.is_none() && out.capsule_lengths.is_none());

        let ucaps = Net::init(&NetConfig::by_name("ucaps", 3).unwrap(), &device);
        let out = ucaps.forward(x.clone());
        assert_eq!(out.logits.dims(), [2, 3, 16, 16, 16]);
        assert_eq!(out.recon.unwrap().dims(), [2, 1, 16, 16, 16]);
        let lengths = out.capsule_lengths.unwrap();
        assert_eq!(lengths.dims(), [2, 3, 2, 2, 2]);
        assert!(values(lengths).iter().all(|&l| (0.0..1.0).contains(&l)));
    }

    #[test]
    fn ablation_variants_build_and_run() {
        let device = Device::flex();
        let (x, _) = random_batch(1, 8, 2, 0, &device);
        let variants = [
            UCapsConfig {
                levels: 2,
                ..Default::default()
            },
            UCapsConfig {
                feature_dilation: 2,
                ..Default::default()
            },
            UCapsConfig {
                feature_kernel: 3,
                ..Default::default()
            },
            UCapsConfig {
                shared_votes: false,
                routing_iters: 2,
                ..Default::default()
            },
            UCapsConfig {
                reconstruction: false,
                ..Default::default()
            },
        ];
        let base = Net::init(&NetConfig::Ucaps(UCapsConfig::default()), &device).num_params();
        for v in variants {
            let cfg = NetConfig::Ucaps(v.clone());
            let net = Net::init(&cfg, &device);
            let out = net.forward(x.clone());
            assert_eq!(out.logits.dims(), [1, 2, 8, 8, 8], "{v:?}");
            assert_eq!(out.recon.is_some(), v.reconstruction);
            let m = cfg.capsule_downsampling().unwrap();
            assert_eq!(
                out.capsule_lengths.unwrap().dims(),
                [1, 2, 8 / m, 8 / m, 8 / m]
            );
            let n = net.num_params();
            // Dilation and routing change no parameter count; the others do.
            if v.feature_dilation == 2 {
                assert_eq!(n, base);
            } else {
                assert_ne!(n, base, "{v:?}");
            }
        }
    }

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let device = Device::flex();
        let cfg = NetConfig::by_name("unet", 2).unwrap();
        let (x, _) = random_batch(1, 8, 2, 3, &device);
        let a = values(Net::init_seeded(&cfg, &device, 7).forward(x.clone()).logits);
        let b = values(Net::init_seeded(&cfg, &device, 7).forward(x.clone()).logits);
        let c = values(Net::init_seeded(&cfg, &device, 8).forward(x).logits);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn config_toml_round_trip_and_defaults() {
        let cfg = NetConfig::Ucaps(UCapsConfig {
            num_classes: 4,
            levels: 2,
            ..Default::default()
        });
        let text = cfg.to_toml();
        assert!(text.contains("model = \"ucaps\""), "{text}");
        assert_eq!(NetConfig::from_toml(&text).unwrap(), cfg);
        let short = NetConfig::from_toml("model = \"unet\"\nnum_classes = 5\n").unwrap();
        assert_eq!(short, NetConfig::Unet(UNetConfig { num_classes: 5 }));
        assert!(NetConfig::from_toml("model = \"vnet\"").is_err());
        assert!(NetConfig::from_toml("model = \"unet\"\nclasses = 3").is_err());
    }

    #[test]
    fn invalid_configs_and_patches_are_errors() {
        let device = Device::flex();
        let bad = NetConfig::Ucaps(UCapsConfig {
            levels: 4,
            ..Default::default()
        });
        assert!(Net::try_init(&bad, &device, 0).is_err());
        assert!(
            Net::try_init(&NetConfig::Unet(UNetConfig { num_classes: 1 }), &device, 0).is_err()
        );
        let ucaps = NetConfig::default();
        assert!(ucaps.check_patch([16, 16, 16]).is_ok());
        assert!(ucaps.check_patch([16, 12, 16]).is_err());
        assert!(NetConfig::by_name("unet", 2)
            .unwrap()
            .check_patch([12, 12, 12])
            .is_ok());
    }

    /// Save then load gives identical outputs, including UCaps' batch-norm running statistics
    /// (updated by a training-mode forward pass before saving).
    #[test]
    fn save_load_gives_identical_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let (x, _) = random_batch(1, 8, 2, 5, &device);
        for name in ["unet", "ucaps"] {
            let cfg = NetConfig::by_name(name, 2).unwrap();
            let ad = device.clone().autodiff();
            let trained = Net::init_seeded(&cfg, &ad, 11);
            let (xa, _) = random_batch(2, 8, 2, 6, &ad);
            let _ = trained.forward(xa); // updates running statistics in training mode
            let net = trained.valid();
            let before = values(net.forward(x.clone()).logits);
            let folder = dir.path().join(name);
            save_model_folder(&folder, &cfg, &net).unwrap();
            let (cfg2, loaded) = load_model_folder(&folder, &device).unwrap();
            assert_eq!(cfg2, cfg);
            assert_eq!(values(loaded.forward(x.clone()).logits), before, "{name}");
            // A fresh network (other weights) differs: the comparison above can fail.
            let fresh = values(Net::init(&cfg, &device).forward(x.clone()).logits);
            assert_ne!(fresh, before);
        }
    }

    #[test]
    fn loading_mismatching_or_broken_weights_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let unet = NetConfig::by_name("unet", 2).unwrap();
        let path = dir.path().join("w.bpk");
        Net::init(&unet, &device).save(&path).unwrap();
        let four = NetConfig::by_name("unet", 4).unwrap();
        let e = Net::load(&four, &path, &device).unwrap_err().to_string();
        assert!(e.contains("w.bpk"), "{e}");
        let ucaps = NetConfig::by_name("ucaps", 2).unwrap();
        assert!(Net::load(&ucaps, &path, &device).is_err());
        std::fs::write(&path, b"not burnpack").unwrap();
        let e = Net::load(&unet, &path, &device).unwrap_err().to_string();
        assert!(e.contains("w.bpk"), "{e}");
        assert!(load_model_folder(&dir.path().join("missing"), &device).is_err());
    }
}
