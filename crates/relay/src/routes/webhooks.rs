//! `POST /v2/webhook`: registers a URL told about uploads announced on a device. The target is
//! checked here, before it is stored (`webhook::check_registration`), and again at every
//! delivery.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use jsonapi::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::db::{Hook, Refused};
use crate::ids::{DeviceId, Scheme, WebhookTarget};
use crate::state::SharedState;
use crate::webhook::{Reach, check_registration};

/// Webhooks one device may have.
const MAX_HOOKS_PER_DEVICE: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    device_id: DeviceId,
    url: String,
    #[serde(default)]
    secret: String,
}

/// `POST /v2/webhook`.
pub async fn register(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: RegisterRequest = jsonapi::json_body(body)?;
    let reach = state.webhooks.reach();
    let scheme = if reach == Reach::Any { Scheme::AllowPlainHttp } else { Scheme::HttpsOnly };
    let target = WebhookTarget::parse(&request.url, scheme).map_err(ApiError::bad_request)?;
    if request.secret.len() > 256 {
        return Err(ApiError::bad_request("secret must be at most 256 bytes"));
    }
    check_registration(&target, reach, &state.config.webhook.ports).await.map_err(ApiError::bad_request)?;
    let hook = Hook { url: request.url, target, secret: request.secret };
    match state.db.add_hook(caller.key_hash(), &request.device_id, hook, MAX_HOOKS_PER_DEVICE)? {
        Ok(()) => Ok(Json(json!({ "ok": true }))),
        Err(Refused::TooManyHooks(max)) => {
            Err(ApiError::rate_limited(format!("at most {max} webhooks per device"), 3600))
        }
        Err(other) => Err(ApiError::internal("webhook", &format!("{other:?}"))),
    }
}
