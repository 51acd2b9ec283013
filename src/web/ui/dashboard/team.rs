//! Dashboard section: the team (`/dashboard/team`): members with their roles, role
//! changes, removal, pending invitations (resend, revoke) and the invite form. Needs
//! `team.view` (the API refuses the member list otherwise, so an Editor gets the 403
//! "Not allowed" page); each control is shown only when the role allows the API route
//! behind it (`team.manage`, `team.remove`, `team.invite`).

use super::Nav;
use crate::web::AppState;
use crate::web::ui::{
    ApiFailure, CsrfForm, Ctx, UiError, UiResult, field_errors, redirect_with_flash,
};
use axum::Router;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;
use serde_json::{Value, json};

/// Templates of this section.
pub const TEMPLATES: &[(&str, &str)] = &[(
    "dashboard/team/index.html",
    include_str!("../templates/dashboard/team/index.html"),
)];

/// Routes of this section.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/team", get(index))
        .route("/dashboard/team/invite", post(invite))
        .route("/dashboard/team/members/{user_id}/role", post(change_role))
        .route("/dashboard/team/members/{user_id}/remove", post(remove))
        .route("/dashboard/team/invitations/{id}/resend", post(resend))
        .route("/dashboard/team/invitations/{id}/revoke", post(revoke))
}

/// Runs one API write for a plain form button and redirects to `back` with a flash:
/// `ok` on success, the API's message on a client error (4xx). Other failures (401,
/// 5xx) go to the error page.
pub(super) async fn act(
    cx: &Ctx,
    method: Method,
    path: &str,
    body: Option<Value>,
    back: &str,
    ok: &str,
) -> UiResult {
    cx.session()?;
    match cx.api(method, path, body).await {
        Ok(_) => Ok(redirect_with_flash(back, ok)),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::UNAUTHORIZED => {
            Ok(redirect_with_flash(back, &e.message))
        }
        Err(e) => Err(e.into()),
    }
}

/// The invite form as the user filled it.
#[derive(Deserialize, Default, Clone)]
struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn page(cx: &Ctx, form: InviteForm, errors: Value, status: StatusCode) -> UiResult {
    let nav = Nav::load(cx).await?;
    // The member list needs team.view: an Editor is refused here (403 page).
    let members = cx.get("/api/v1/team/members").await?;
    let roles = cx.get("/api/v1/roles").await?;
    let invitations = if nav.can("team.invite") {
        cx.get("/api/v1/team/invitations").await?
    } else {
        json!([])
    };
    let pending: Vec<&Value> = invitations
        .as_array()
        .map(|a| a.iter().filter(|i| i["status"] == "pending").collect())
        .unwrap_or_default();
    let role_options: Vec<(String, String)> = roles
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    Some((
                        r.get("key")?.as_str()?.to_string(),
                        r.get("name")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let me_id = nav.me.get("id").cloned().unwrap_or(Value::Null);
    cx.render_status(
        status,
        "dashboard/team/index.html",
        context! {
            title => "Team",
            members => Serde(members),
            invitations => Serde(pending),
            role_options => Serde(role_options),
            me_id => Serde(me_id),
            form => context! { email => form.email, role => if form.role.is_empty() { "viewer".to_string() } else { form.role } },
            errors => Serde(errors),
            ..nav.ctx("team")
        },
    )
}

async fn index(cx: Ctx) -> Response {
    let r = page(&cx, InviteForm::default(), json!({}), StatusCode::OK).await;
    cx.finish(r)
}

async fn invite(cx: Ctx, CsrfForm(f): CsrfForm<InviteForm>) -> Response {
    let r = async {
        cx.session()?;
        match cx
            .post(
                "/api/v1/team/invitations",
                json!({ "email": f.email.trim(), "role": f.role }),
            )
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                "/dashboard/team",
                &format!("Invitation sent to {}.", f.email.trim()),
            )),
            Err(e)
                if e.status.is_client_error()
                    && e.status != StatusCode::UNAUTHORIZED
                    && e.status != StatusCode::FORBIDDEN =>
            {
                let errors = invite_errors(&e);
                page(&cx, f, errors, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

/// Field errors of the invite form: unnamed refusals (a conflict) go next to the e-mail.
fn invite_errors(e: &ApiFailure) -> Value {
    let errors = field_errors(e);
    if errors.get("_form").is_some() {
        json!({ "email": e.message })
    } else {
        errors
    }
}

#[derive(Deserialize)]
struct RoleForm {
    role: String,
}

async fn change_role(
    cx: Ctx,
    Path(user_id): Path<String>,
    CsrfForm(f): CsrfForm<RoleForm>,
) -> Response {
    let r = act(
        &cx,
        Method::PATCH,
        &format!("/api/v1/team/members/{user_id}"),
        Some(json!({ "role": f.role })),
        "/dashboard/team",
        "Role changed.",
    )
    .await;
    cx.finish(r)
}

async fn remove(
    cx: Ctx,
    Path(user_id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/team/members/{user_id}"),
        None,
        "/dashboard/team",
        "Member removed.",
    )
    .await;
    cx.finish(r)
}

async fn resend(
    cx: Ctx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = act(
        &cx,
        Method::POST,
        &format!("/api/v1/team/invitations/{id}/resend"),
        None,
        "/dashboard/team",
        "Invitation sent again.",
    )
    .await;
    cx.finish(r)
}

async fn revoke(
    cx: Ctx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/team/invitations/{id}"),
        None,
        "/dashboard/team",
        "Invitation revoked.",
    )
    .await;
    cx.finish(r)
}
