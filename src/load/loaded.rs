//! What loading hands on: the recognised documents and their typed resources.

use crate::input::places::Places;
use crate::input::yaml::Seg;
use crate::load::kinds::*;
use crate::span::{FileId, Loc, Span};

/// One recognised document of a known kind. Its YAML tree is dropped once it is typed: only
/// the places of its nodes are kept, for diagnostics.
pub struct Document {
    pub file: FileId,
    pub kind: Kind,
    /// Where the document starts.
    pub start: Loc,
    pub places: Places,
}

impl Document {
    /// The span of the value at `path` (or of the deepest node on the way).
    pub fn span(&self, path: &[Seg]) -> Span {
        Span::new(self.file, self.places.locate(path).0)
    }
    /// The span of the key of the entry at `path` (falls back to the value).
    pub fn key_span(&self, path: &[Seg]) -> Span {
        let (value, key) = self.places.locate(path);
        Span::new(self.file, key.unwrap_or(value))
    }
}

/// A typed resource and the document it came from.
pub struct Res<T> {
    pub doc: usize,
    pub meta: ObjectMeta,
    pub spec: T,
}

impl<T> Res<T> {
    pub fn ns(&self) -> &str {
        self.meta.ns()
    }
    pub fn name(&self) -> &str {
        &self.meta.name
    }
}

/// Everything read from the inputs, typed.
#[derive(Default)]
pub struct Loaded {
    /// The name of each input file, by `FileId` (for provenance).
    pub files: Vec<String>,
    pub docs: Vec<Document>,
    pub mesh_configs: Vec<Res<MeshConfigSpec>>,
    pub egresses: Vec<Res<EgressSpec>>,
    pub gateways: Vec<Res<EgressGatewaySpec>>,
    pub upstream_settings: Vec<Res<UpstreamTrafficSettingSpec>>,
    pub route_groups: Vec<Res<HTTPRouteGroupSpec>>,
    pub services: Vec<Res<ServiceSpec>>,
    pub service_accounts: Vec<Res<NoSpec>>,
}

impl Loaded {
    pub fn doc<T>(&self, r: &Res<T>) -> &Document {
        &self.docs[r.doc]
    }
    pub fn file_name(&self, file: FileId) -> &str {
        &self.files[file]
    }
}
