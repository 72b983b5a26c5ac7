//! Kernel module selection: the requested modules plus everything they
//! depend on, in an order the kernel accepts (dependencies first).
//!
//! Debian's kernel package ships no `modules.dep` (the postinst runs depmod),
//! so the dependencies are read where depmod reads them: the `depends=` field
//! of each module's `.modinfo` ELF section.

use std::collections::{BTreeMap, BTreeSet};

use object::{Object, ObjectSection};

/// One loadable module from the kernel package.
#[derive(Debug, Clone)]
pub struct Module {
    /// Canonical name, dashes turned into underscores as the kernel does.
    pub name: String,
    /// Path relative to `/lib/modules/<version>/`, e.g. `kernel/net/...`.
    pub path: String,
    pub depends: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("kernel module {path}: cannot read its ELF .modinfo section: {reason}")]
    BadModinfo { path: String, reason: String },
    #[error("kernel module {path} is compressed ({ext}); only plain .ko files are supported: use a kernel package with uncompressed modules (Debian 12)")]
    Compressed { path: String, ext: String },
    #[error("kernel module {name:?} is not in the kernel package (it may be built in: remove it from [kernel] modules in appliance.toml, or check its spelling)")]
    NotFound { name: String },
    #[error(
        "kernel module {name:?} depends on {dependency:?}, which the kernel package does not have"
    )]
    MissingDependency { name: String, dependency: String },
    #[error("kernel modules form a dependency cycle through {name:?}")]
    Cycle { name: String },
}

/// Every module of a kernel package, by canonical name.
#[derive(Debug, Default)]
pub struct ModuleSet {
    modules: BTreeMap<String, Module>,
}

impl ModuleSet {
    /// Indexes module files; `files` yields (path under the modules dir, bytes).
    /// Files that are not modules are ignored.
    pub fn from_files(
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<Self, ModuleError> {
        let mut modules = BTreeMap::new();
        for (path, data) in files {
            if let Some(ext) = [".ko.xz", ".ko.zst", ".ko.gz"]
                .iter()
                .find(|e| path.ends_with(*e))
            {
                return Err(ModuleError::Compressed {
                    path,
                    ext: (*ext).to_string(),
                });
            }
            if !path.ends_with(".ko") {
                continue;
            }
            let info = read_modinfo(&path, &data)?;
            let name = info
                .get("name")
                .cloned()
                .unwrap_or_else(|| file_stem(&path).to_string());
            let depends = info
                .get("depends")
                .map(|d| {
                    d.split(',')
                        .filter(|s| !s.is_empty())
                        .map(canonical)
                        .collect()
                })
                .unwrap_or_default();
            let name = canonical(&name);
            modules.insert(
                name.clone(),
                Module {
                    name,
                    path,
                    depends,
                    data,
                },
            );
        }
        Ok(Self { modules })
    }

    pub fn len(&self) -> usize {
        self.modules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// The requested modules and their dependency closure, dependencies
    /// before the modules that need them; ties keep the request order, so
    /// the result is the same for the same request.
    pub fn closure(&self, requested: &[String]) -> Result<Vec<&Module>, ModuleError> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        for name in requested {
            let name = canonical(name);
            if !self.modules.contains_key(&name) {
                return Err(ModuleError::NotFound { name });
            }
            self.visit(&name, &mut Vec::new(), &mut done, &mut order)?;
        }
        Ok(order)
    }

    fn visit<'a>(
        &'a self,
        name: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        order: &mut Vec<&'a Module>,
    ) -> Result<(), ModuleError> {
        if done.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            return Err(ModuleError::Cycle { name: name.into() });
        }
        let module = self
            .modules
            .get(name)
            .ok_or_else(|| ModuleError::NotFound { name: name.into() })?;
        path.push(name.to_string());
        for dep in &module.depends {
            if !self.modules.contains_key(dep) {
                return Err(ModuleError::MissingDependency {
                    name: name.into(),
                    dependency: dep.clone(),
                });
            }
            self.visit(dep, path, done, order)?;
        }
        path.pop();
        done.insert(name.to_string());
        order.push(module);
        Ok(())
    }
}

/// The kernel treats `-` and `_` in module names as the same character.
fn canonical(name: &str) -> String {
    name.trim().replace('-', "_")
}

fn file_stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".ko").unwrap_or(file)
}

/// `.modinfo` holds NUL-separated `key=value` strings.
fn read_modinfo(path: &str, data: &[u8]) -> Result<BTreeMap<String, String>, ModuleError> {
    let bad = |reason: String| ModuleError::BadModinfo {
        path: path.into(),
        reason,
    };
    let elf = object::File::parse(data).map_err(|e| bad(e.to_string()))?;
    let section = elf
        .section_by_name(".modinfo")
        .ok_or_else(|| bad("no .modinfo section".into()))?;
    let bytes = section.data().map_err(|e| bad(e.to_string()))?;
    let mut info = BTreeMap::new();
    for field in bytes.split(|b| *b == 0) {
        let Ok(field) = std::str::from_utf8(field) else {
            continue;
        };
        if let Some((key, value)) = field.split_once('=') {
            // A key may repeat (alias=, firmware=); the first is enough for
            // the keys we read (name, depends), which appear once.
            info.entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, deps: &[&str]) -> Module {
        Module {
            name: name.into(),
            path: format!("kernel/{name}.ko"),
            depends: deps.iter().map(|d| d.to_string()).collect(),
            data: vec![],
        }
    }

    fn set(mods: &[Module]) -> ModuleSet {
        ModuleSet {
            modules: mods.iter().map(|m| (m.name.clone(), m.clone())).collect(),
        }
    }

    fn names(v: &[&Module]) -> Vec<String> {
        v.iter().map(|m| m.name.clone()).collect()
    }

    #[test]
    fn closure_puts_dependencies_first_once() {
        // nft_ct needs nf_tables and nf_conntrack; nf_tables needs nfnetlink.
        let s = set(&[
            module("nfnetlink", &[]),
            module("nf_tables", &["nfnetlink"]),
            module("nf_conntrack", &["nf_defrag_ipv4"]),
            module("nf_defrag_ipv4", &[]),
            module("nft_ct", &["nf_tables", "nf_conntrack"]),
        ]);
        let order = s.closure(&["nft-ct".into(), "nf_tables".into()]).unwrap();
        assert_eq!(
            names(&order),
            [
                "nfnetlink",
                "nf_tables",
                "nf_defrag_ipv4",
                "nf_conntrack",
                "nft_ct"
            ]
        );
    }

    #[test]
    fn unknown_missing_and_cyclic_modules_are_errors() {
        let s = set(&[
            module("a", &["b"]),
            module("c", &["d"]),
            module("d", &["c"]),
        ]);
        assert!(matches!(
            s.closure(&["zz".into()]),
            Err(ModuleError::NotFound { .. })
        ));
        assert!(matches!(
            s.closure(&["a".into()]),
            Err(ModuleError::MissingDependency { .. })
        ));
        assert!(matches!(
            s.closure(&["c".into()]),
            Err(ModuleError::Cycle { .. })
        ));
    }

    #[test]
    fn non_elf_module_is_reported_with_its_path() {
        let err =
            ModuleSet::from_files([("kernel/x.ko".to_string(), b"junk".to_vec())]).unwrap_err();
        assert!(err.to_string().contains("kernel/x.ko"), "{err}");
    }
}
