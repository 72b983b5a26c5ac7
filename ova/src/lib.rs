//! Packages the appliance's raw disk image for vSphere.
//!
//! Input: a raw GPT disk image and an [`OvfSpec`] (virtual hardware, product
//! and the OVF property table, as plain data). Output: a deterministic `.ova`
//! (ustar: descriptor `.ovf`, manifest `.mf`, streamOptimized `.vmdk`) and,
//! for `image-builder inspect`, an [`OvaReport`] read back from any such file.
//!
//! Modules, one job each: [`vmdk`] (disk format, writer and reader), [`ovf`]
//! (descriptor writer and parser), [`manifest`] (SHA256 lines), [`archive`]
//! (ustar members), [`package`] (`write_ova`), [`mod@inspect`].
//!
//! ```no_run
//! let spec = ova::OvfSpec::example();
//! // mtime: the caller's SOURCE_DATE_EPOCH.
//! let summary = ova::write_ova("out/lb.img".as_ref(), &spec, "out".as_ref(), 1_700_000_000)?;
//! println!("{}", ova::inspect(&summary.ova_path)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod archive;
pub mod inspect;
pub mod manifest;
pub mod ovf;
pub mod package;
pub mod spec;
pub mod vmdk;

pub use inspect::{inspect, InspectError, MemberReport, OvaReport, VmdkReport};
pub use package::{write_ova, MemberSummary, OvaNames, OvaSummary, PackageError};
pub use spec::{
    DiskController, Firmware, Hardware, NicType, OvfSpec, ProductInfo, Property, PropertyGroup,
    PropertyType, Transport,
};
