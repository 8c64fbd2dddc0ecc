//! What one server may serve: the rules of DESIGN §2 that tie a license file to the
//! server that loads it. A server serves either HAL features or normal network features,
//! never both; and a feature locked to HostIDs is served only where the HostID matches.

use super::model::{Feature, License};
use crate::{HostId, ServerId};

/// How a license is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeMode {
    /// Every feature is HAL: served by a triad of three servers.
    Hal,
    /// Every feature is a normal network feature: served by one server.
    Single,
}

/// Where a server stands: alone, or at a position in a HAL triad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerPosition {
    Single,
    Triad(ServerId),
}

/// Why no server can serve a license file as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(
        "{source_name}:{line}: FEATURE {feature} has no COUNT; a license server serves only \
         counted network features: add `COUNT = <seats>`"
    )]
    Uncounted {
        source_name: String,
        feature: String,
        line: u32,
    },
    #[error(
        "{source_name}:{hal_line}: FEATURE {hal_feature} is a HAL feature but FEATURE \
         {single_feature} (line {single_line}) is a normal network feature; a server serves \
         either HAL features or normal network features, never both: put them in separate \
         license files"
    )]
    Mixed {
        source_name: String,
        hal_feature: String,
        hal_line: u32,
        single_feature: String,
        single_line: u32,
    },
}

/// Why this server may not serve a feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostIdError {
    #[error(
        "FEATURE {feature} is locked to HostID {expected} for {position}, but this machine's \
         HostID is {actual}"
    )]
    Mismatch {
        feature: String,
        position: String,
        expected: HostId,
        actual: HostId,
    },
    #[error("FEATURE {feature} is {what}, so it cannot be served by {position}")]
    WrongMode {
        feature: String,
        what: &'static str,
        position: String,
    },
}

fn describe(position: ServerPosition) -> String {
    match position {
        ServerPosition::Single => "a single server".to_string(),
        ServerPosition::Triad(id) => format!("HAL server {id}"),
    }
}

impl License {
    /// How this license is served, or the first reason no server can serve it (see
    /// [`License::serve_errors`] for every reason).
    pub fn serve_mode(&self) -> Result<ServeMode, ServeError> {
        match self.serve_errors().into_iter().next() {
            Some(error) => Err(error),
            None if self.features.iter().any(|f| f.hal) => Ok(ServeMode::Hal),
            None => Ok(ServeMode::Single),
        }
    }

    /// Every reason no server can serve this license: each feature without COUNT, in file
    /// order, then a mix of HAL and normal network features (naming the first of each).
    /// Empty when a server can serve it. At most one error per feature plus one.
    pub fn serve_errors(&self) -> Vec<ServeError> {
        let mut errors: Vec<ServeError> = self
            .features
            .iter()
            .filter(|f| f.count.is_none())
            .map(|f| ServeError::Uncounted {
                source_name: self.source_name.clone(),
                feature: f.name.to_string(),
                line: f.origin.line,
            })
            .collect();
        // An uncounted feature is reported above; it is no normal network feature.
        let hal = self.features.iter().find(|f| f.hal);
        let single = self.features.iter().find(|f| !f.hal && f.count.is_some());
        if let (Some(h), Some(s)) = (hal, single) {
            errors.push(ServeError::Mixed {
                source_name: self.source_name.clone(),
                hal_feature: h.name.to_string(),
                hal_line: h.origin.line,
                single_feature: s.name.to_string(),
                single_line: s.origin.line,
            });
        }
        errors
    }
}

impl Feature {
    /// Whether the server at `position`, whose own HostID is `own`, may serve this feature.
    ///
    /// A HAL feature is served only by a triad server; if it names HostIDs, server #N must
    /// have the N-th. A normal feature is served only by a single server; if it names a
    /// HostID, the server must have it.
    pub fn check_hostid(&self, position: ServerPosition, own: &HostId) -> Result<(), HostIdError> {
        let slot = match (self.hal, position) {
            (true, ServerPosition::Triad(id)) => id.index(),
            (false, ServerPosition::Single) => 0,
            (hal, position) => {
                return Err(HostIdError::WrongMode {
                    feature: self.name.to_string(),
                    what: if hal {
                        "a HAL feature"
                    } else {
                        "a normal network feature"
                    },
                    position: describe(position),
                });
            }
        };
        match self.hostids.get(slot) {
            None => Ok(()),
            Some(expected) if expected == own => Ok(()),
            Some(expected) => Err(HostIdError::Mismatch {
                feature: self.name.to_string(),
                position: describe(position),
                expected: expected.clone(),
                actual: own.clone(),
            }),
        }
    }
}
