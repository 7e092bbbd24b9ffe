//! Bookkeeping for the permission relay: which requests are pending, which
//! were answered. Ids are matched case-insensitively (Claude Code does).
//!
//! Both sets are bounded: Claude Code never tells us when the local dialog
//! won the race, so pending ids that are never answered here would otherwise
//! pile up for the life of the session.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::bridge::{PermissionRequest, VerdictError};

const MAX_PENDING: usize = 1024;
const MAX_ANSWERED: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Permissions {
    pending: HashMap<String, PermissionRequest>,
    pending_order: VecDeque<String>,
    answered: HashSet<String>,
    answered_order: VecDeque<String>,
}

fn canonical(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

impl Permissions {
    /// Remember a request. A repeated id replaces the older request.
    pub fn on_request(&mut self, request: PermissionRequest) {
        let key = canonical(&request.request_id);
        self.answered.remove(&key);
        if self.pending.insert(key.clone(), request).is_none() {
            self.pending_order.push_back(key);
        }
        while self.pending_order.len() > MAX_PENDING {
            if let Some(old) = self.pending_order.pop_front() {
                tracing::warn!(request_id = %old, "forgetting an unanswered permission request (too many pending)");
                self.pending.remove(&old);
            }
        }
    }

    /// Mark `id` answered; returns the id as Claude Code sent it.
    pub fn resolve(&mut self, id: &str) -> Result<String, VerdictError> {
        let key = canonical(id);
        let Some(request) = self.pending.remove(&key) else {
            return Err(if self.answered.contains(&key) {
                VerdictError::AlreadyAnswered(id.to_string())
            } else {
                VerdictError::Unknown(id.to_string())
            });
        };
        self.pending_order.retain(|k| k != &key);
        if self.answered.insert(key.clone()) {
            self.answered_order.push_back(key);
        }
        while self.answered_order.len() > MAX_ANSWERED {
            if let Some(old) = self.answered_order.pop_front() {
                self.answered.remove(&old);
            }
        }
        Ok(request.request_id)
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: &str) -> PermissionRequest {
        PermissionRequest {
            request_id: id.into(),
            tool_name: "Bash".into(),
            description: "d".into(),
            input_preview: "{}".into(),
        }
    }

    #[test]
    fn resolves_case_insensitively_once() {
        let mut p = Permissions::default();
        p.on_request(req("abcde"));
        assert_eq!(p.resolve("ABCDE").unwrap(), "abcde");
        assert_eq!(
            p.resolve("abcde"),
            Err(VerdictError::AlreadyAnswered("abcde".into()))
        );
        assert_eq!(
            p.resolve("zzzzz"),
            Err(VerdictError::Unknown("zzzzz".into()))
        );
        assert_eq!(p.pending_count(), 0);
    }

    #[test]
    fn pending_set_is_bounded() {
        let mut p = Permissions::default();
        for i in 0..(MAX_PENDING + 10) {
            p.on_request(req(&format!("id{i}")));
        }
        assert_eq!(p.pending_count(), MAX_PENDING);
        assert!(matches!(p.resolve("id0"), Err(VerdictError::Unknown(_))));
        assert!(p.resolve(&format!("id{}", MAX_PENDING + 9)).is_ok());
    }
}
