//! The web panel (server-rendered HTML, see `web/`).
use axum::Router;

use crate::state::SharedState;

pub fn router() -> Router<SharedState> {
    Router::new()
}
