//! Prints a license in the standard layout, and lists a feature's values in their
//! normalised form (shared by the printer and the canonical form that is signed).

use std::fmt::Write;

use super::model::{Directive, Feature, License};

/// The normalised value of every directive `feature` has, in [`Directive::ALL`] order,
/// KEY excluded. Parsing the printed form of these values gives them back unchanged.
pub(super) fn values(feature: &Feature) -> Vec<(Directive, String)> {
    let mut out = vec![(Directive::Vendor, feature.vendor.to_string())];
    let mut push = |directive, value: Option<String>| {
        if let Some(value) = value {
            out.push((directive, value));
        }
    };
    push(
        Directive::Version,
        feature.version.as_ref().map(|v| v.to_string()),
    );
    push(Directive::Count, feature.count.map(|n| n.to_string()));
    push(Directive::HalServers, feature.hal.then(|| "3".to_string()));
    push(
        Directive::Borrow,
        feature.borrow_hours_max.map(|h| h.to_string()),
    );
    let hostids: Vec<&str> = feature.hostids.iter().map(|h| h.as_str()).collect();
    push(
        Directive::HostId,
        (!hostids.is_empty()).then(|| hostids.join(" ")),
    );
    push(Directive::Start, feature.start.map(|d| d.to_string()));
    push(Directive::End, feature.end.map(|d| d.to_string()));
    push(Directive::Licensee, feature.licensee.clone());
    push(Directive::Comment, feature.comment.clone());
    out
}

/// `value` as written in a file: bare, or quoted when it holds `#`, `"` or `\`.
fn written(value: &str) -> String {
    if !value.contains(['#', '"', '\\']) {
        return value.to_string();
    }
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

impl Feature {
    /// The feature as a FEATURE block in the standard layout, ending in a newline.
    pub fn to_text(&self) -> String {
        let mut out = format!("FEATURE {}\n{{\n", self.name);
        for (directive, value) in values(self) {
            let _ = writeln!(out, "  {directive} = {}", written(&value));
        }
        if let Some(key) = &self.key {
            let _ = writeln!(out, "  KEY = {key}");
        }
        out.push_str("}\n");
        out
    }
}

impl License {
    /// The license in the standard layout: its features in order, a blank line between.
    /// Comments and the original layout are not kept (see [`super::sign_text`] for that).
    pub fn to_text(&self) -> String {
        let blocks: Vec<String> = self.features.iter().map(Feature::to_text).collect();
        blocks.join("\n")
    }
}
