//! LICENSE HOOK: where the license library of `paramant-license` (branch `license`) plugs into
//! the panel. Replace the body of [`status`] with a call to that library (the verified license
//! state it exposes); the admin API (`GET /admin/api/admin/license`) and the license page show
//! whatever it returns. Until then the panel says the status comes from the license service.

/// The verified license status, as JSON, when the license library is connected.
pub fn status() -> Option<serde_json::Value> {
    None
}
