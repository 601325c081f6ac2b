//! capsid-prep: the preprocessing stage — tomograms made ready for the networks, and their training
//! targets.
//!
//! * [`prep`]: preprocessing of tomograms — binning (block mean or Fourier cropping), Gaussian
//!   low-pass and normalisation (z-score or percentile clip), as pure functions on whole arrays
//!   and as a driver that streams a tomogram slab by slab ([`prep::prep_stream`]).
//! * [`mask`]: label maps and instance maps drawn from particle lists (spheres of the class radius
//!   or rotated class templates): the training targets.
//!
//! Both work on capsid-core's types ([`capsid_core::Volume`], [`capsid_core::Particle`],
//! [`capsid_core::ClassTable`]) and return its error type, [`capsid_core::CoreError`].

// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod mask;
pub mod prep;
