//! Invariant 2, the role rule (the part a history shows by itself): #3 never grants, and
//! borrows are granted only by #1. (Whether #2 granted while #1 was up and connected needs
//! the connectivity the world tracks; that check comes with the fault model.)

use serde_json::Value;

use super::Invariant;

#[derive(Debug, Default)]
pub(super) struct RoleRule;

impl Invariant for RoleRule {
    fn name(&self) -> &'static str {
        "2 role rule"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        if record["kind"] != "reply" || record["result"] != "granted" {
            return Ok(());
        }
        let by = record["granted_by"].as_u64().unwrap_or(0);
        if by == 3 || record["server"] == 3 && by == 0 {
            return Err((
                "server #3 granted a seat".to_string(),
                vec![line.to_string()],
            ));
        }
        if record.get("borrow_end_ms").is_some() && by != 1 {
            return Err((
                format!("a borrow was granted by #{by}, not #1"),
                vec![line.to_string()],
            ));
        }
        Ok(())
    }
}
