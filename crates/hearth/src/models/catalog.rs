//! The catalog of downloadable Gemma 3 models. The data lives in `assets/catalog.json`; this
//! module only parses and checks it, so editing the list never means editing code.

use serde::{Deserialize, Serialize};

use super::ModelsError;

/// The catalog shipped with this build.
const BUILTIN: &str = include_str!("../../../../assets/catalog.json");

/// Whether Hearth gives vision models images: then a vision model downloads with its projector
/// (mmproj), the memory estimate counts it, and the runtime loads it with the model
/// (`turn_inputs::Vision`). Off, a vision model would be offered as a text model.
pub const IMAGE_INPUT: bool = true;

/// Shape numbers the KV-cache formula needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    pub layers: u32,
    pub hidden: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub sliding_window: u32,
}

/// One file on the Hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubFile {
    pub repo: String,
    pub file: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub size_exact: bool,
    pub sha256: Option<String>,
    #[serde(default)]
    pub gated: bool,
}

/// One quantization of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// What `--quant` matches (unique within a model), e.g. `Q4_0`, `Q4_0-google`.
    pub name: String,
    /// The GGUF quantization type, e.g. `Q4_K_M`.
    pub quant: String,
    #[serde(default)]
    pub qat: bool,
    pub repo: String,
    pub file: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub size_exact: bool,
    pub sha256: Option<String>,
    #[serde(default)]
    pub gated: bool,
    /// False where the repo/file name could not be checked when the catalog was written.
    #[serde(default)]
    pub verified: bool,
    /// A projector that must come from this variant's repo instead of the model's default.
    #[serde(default)]
    pub mmproj: Option<HubFile>,
}

impl Variant {
    pub fn hub_file(&self) -> HubFile {
        HubFile {
            repo: self.repo.clone(),
            file: self.file.clone(),
            size_bytes: self.size_bytes,
            size_exact: self.size_exact,
            sha256: self.sha256.clone(),
            gated: self.gated,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub id: String,
    pub display_name: String,
    pub params: String,
    pub context_length: u64,
    pub vision: bool,
    pub architecture: Architecture,
    /// Name of the recommended variant.
    pub recommended: String,
    pub variants: Vec<Variant>,
    pub mmproj: Option<HubFile>,
}

impl CatalogEntry {
    pub fn recommended_variant(&self) -> &Variant {
        // `Catalog::parse` checked that the recommended name exists.
        self.variants.iter().find(|v| v.name == self.recommended).unwrap_or(&self.variants[0])
    }

    /// The variant `--quant` names (case-insensitive), or the recommended one.
    pub fn variant(&self, quant: Option<&str>) -> Result<&Variant, ModelsError> {
        match quant {
            None => Ok(self.recommended_variant()),
            Some(q) => {
                self.variants.iter().find(|v| v.name.eq_ignore_ascii_case(q)).ok_or_else(|| ModelsError::UnknownQuant {
                    id: self.id.clone(),
                    quant: q.to_string(),
                    available: self.variants.iter().map(|v| v.name.clone()).collect(),
                })
            }
        }
    }

    /// Whether Hearth can give this model images (a vision model, and [`IMAGE_INPUT`] is on).
    pub fn reads_images(&self) -> bool {
        IMAGE_INPUT && self.vision
    }

    /// The projector to fetch with `variant`: none unless this model [reads images](Self::reads_images).
    pub fn mmproj_for(&self, variant: &Variant) -> Option<HubFile> {
        if !self.reads_images() {
            return None;
        }
        variant.mmproj.clone().or_else(|| self.mmproj.clone())
    }

    /// The registry id a download of `variant` gets, e.g. `gemma-3-1b-it-q4_0`.
    pub fn installed_id(&self, variant: &Variant) -> String {
        format!("{}-{}", self.id, variant.name.to_ascii_lowercase())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    pub schema: u32,
    #[serde(default)]
    pub notes: Vec<String>,
    pub models: Vec<CatalogEntry>,
}

impl Catalog {
    /// The catalog compiled into this build (no network).
    pub fn builtin() -> Result<Self, ModelsError> {
        Self::parse(BUILTIN)
    }

    /// Parses and checks a catalog document.
    pub fn parse(text: &str) -> Result<Self, ModelsError> {
        let catalog: Catalog = serde_json::from_str(text).map_err(|e| ModelsError::Catalog(e.to_string()))?;
        if catalog.schema != 1 {
            return Err(ModelsError::Catalog(format!("unsupported schema {}", catalog.schema)));
        }
        let mut ids = std::collections::HashSet::new();
        for m in &catalog.models {
            if !ids.insert(m.id.as_str()) {
                return Err(ModelsError::Catalog(format!("duplicate model id '{}'", m.id)));
            }
            if m.variants.is_empty() {
                return Err(ModelsError::Catalog(format!("'{}' has no variants", m.id)));
            }
            if !m.variants.iter().any(|v| v.name == m.recommended) {
                return Err(ModelsError::Catalog(format!(
                    "'{}' recommends '{}', which is not one of its variants",
                    m.id, m.recommended
                )));
            }
            let a = &m.architecture;
            if a.layers == 0 || a.kv_heads == 0 || a.head_dim == 0 || a.sliding_window == 0 || m.context_length == 0 {
                return Err(ModelsError::Catalog(format!("'{}' has a zero shape number", m.id)));
            }
            let mut names = std::collections::HashSet::new();
            for v in &m.variants {
                if !names.insert(v.name.to_ascii_lowercase()) {
                    return Err(ModelsError::Catalog(format!("'{}' lists variant '{}' twice", m.id, v.name)));
                }
                if let Some(sha) = &v.sha256 {
                    if !is_sha256(sha) {
                        return Err(ModelsError::Catalog(format!(
                            "'{}' {}: sha256 is not 64 hex digits",
                            m.id, v.name
                        )));
                    }
                }
            }
            if m.vision && m.mmproj.is_none() {
                return Err(ModelsError::Catalog(format!("vision model '{}' has no mmproj", m.id)));
            }
        }
        Ok(catalog)
    }

    /// Where `hearth models catalog --refresh` keeps its refreshed copy.
    pub fn refreshed_path(data_dir: &std::path::Path) -> std::path::PathBuf {
        data_dir.join("catalog.json")
    }

    /// The refreshed copy in `data_dir` if there is a valid one, else the built-in catalog.
    /// No network.
    pub fn load(data_dir: &std::path::Path) -> Result<Self, ModelsError> {
        let path = Self::refreshed_path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => match Self::parse(&text) {
                Ok(c) => Ok(c),
                Err(e) => {
                    // A damaged refresh must not lock the user out of downloads.
                    log::warn!("ignoring {}: {e}; using the built-in catalog", path.display());
                    Self::builtin()
                }
            },
            Err(_) => Self::builtin(),
        }
    }

    pub fn save(&self, data_dir: &std::path::Path) -> Result<std::path::PathBuf, ModelsError> {
        let path = Self::refreshed_path(data_dir);
        std::fs::create_dir_all(data_dir).map_err(ModelsError::io("cannot create", data_dir))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| ModelsError::Catalog(e.to_string()))?;
        let tmp = data_dir.join(".catalog.json.partial");
        std::fs::write(&tmp, text).map_err(ModelsError::io("cannot write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(ModelsError::io("cannot write", &path))?;
        Ok(path)
    }

    pub fn get(&self, id: &str) -> Result<&CatalogEntry, ModelsError> {
        self.models.iter().find(|m| m.id.eq_ignore_ascii_case(id)).ok_or_else(|| ModelsError::UnknownCatalogId {
            id: id.to_string(),
            known: self.models.iter().map(|m| m.id.clone()).collect(),
        })
    }
}

pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Facts checked against public sources (docs: /work/shared/notes/platform-facts.md,
    /// "Catalog, from public sources", 2026-11-29). A change here must be a re-checked fact.
    #[test]
    fn builtin_catalog_matches_the_verified_hub_facts() {
        let cat = Catalog::builtin().unwrap();
        // ggml-org's ungated QAT Q4_0 files: exact sizes, the recommended variant of every size.
        let qat = [
            ("gemma-3-270m-it", "ggml-org/gemma-3-270m-it-qat-GGUF", "gemma-3-270m-it-qat-Q4_0.gguf", 241_410_624),
            ("gemma-3-1b-it", "ggml-org/gemma-3-1b-it-qat-GGUF", "gemma-3-1b-it-qat-Q4_0.gguf", 720_425_600),
            ("gemma-3-4b-it", "ggml-org/gemma-3-4b-it-qat-GGUF", "gemma-3-4b-it-qat-Q4_0.gguf", 2_526_080_992),
            ("gemma-3-12b-it", "ggml-org/gemma-3-12b-it-qat-GGUF", "gemma-3-12b-it-qat-Q4_0.gguf", 7_131_017_792),
            ("gemma-3-27b-it", "ggml-org/gemma-3-27b-it-qat-GGUF", "gemma-3-27b-it-qat-Q4_0.gguf", 15_908_791_488),
        ];
        for (id, repo, file, size) in qat {
            let m = cat.get(id).unwrap();
            let v = m.variant(Some("Q4_0")).unwrap();
            assert_eq!((v.repo.as_str(), v.file.as_str(), v.size_bytes), (repo, file, size), "{id}");
            assert!(v.size_exact && v.verified && v.qat && !v.gated, "{id}");
            assert_eq!(m.recommended, "Q4_0", "{id}");
        }
        // Google's gated QAT repos: 1B, 4B, 12B, 27B only, file gemma-3-{size}-it-q4_0.gguf.
        for size in ["1b", "4b", "12b", "27b"] {
            let v = cat.get(&format!("gemma-3-{size}-it")).unwrap().variant(Some("Q4_0-google")).unwrap();
            assert_eq!(v.repo, format!("google/gemma-3-{size}-it-qat-q4_0-gguf"));
            assert_eq!(v.file, format!("gemma-3-{size}-it-q4_0.gguf"));
            assert!(v.gated, "{size}");
        }
        // No Google 270M QAT GGUF exists: nothing may point at one.
        let m270 = cat.get("gemma-3-270m-it").unwrap();
        assert!(m270.variant(Some("Q4_0-google")).is_err());
        assert!(cat.models.iter().flat_map(|m| &m.variants).all(|v| !v.repo.starts_with("google/gemma-3-270m")));
        // Their projectors, kept as data for the vision work.
        for (size, file) in [
            ("4b", "mmproj-model-f16-4B.gguf"),
            ("12b", "mmproj-model-f16-12B.gguf"),
            ("27b", "mmproj-model-f16-27B.gguf"),
        ] {
            let v = cat.get(&format!("gemma-3-{size}-it")).unwrap().variant(Some("Q4_0-google")).unwrap();
            assert_eq!(v.mmproj.as_ref().map(|m| m.file.as_str()), Some(file));
        }
        // Exact sizes are exact: the ggml-org 4B Q4_K_M and its projector.
        let m4 = cat.get("gemma-3-4b-it").unwrap();
        assert_eq!(m4.variant(Some("Q4_K_M")).unwrap().size_bytes, 2_489_757_856);
        assert_eq!(
            m4.mmproj.as_ref().map(|m| (m.file.as_str(), m.size_bytes)),
            Some(("mmproj-model-f16.gguf", 851_251_104))
        );
    }

    #[test]
    fn vision_models_read_images_and_fetch_their_projector() {
        let cat = Catalog::builtin().unwrap();
        assert!(cat.models.iter().any(|m| m.vision), "the catalog has vision models");
        for m in &cat.models {
            assert_eq!(m.reads_images(), m.vision, "{}", m.id);
            for v in &m.variants {
                assert_eq!(m.mmproj_for(v).is_some(), m.vision, "{} {}", m.id, v.name);
            }
        }
    }
}
