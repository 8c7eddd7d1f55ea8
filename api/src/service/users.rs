//! The current user and logout.

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::service::required::Required;
use crate::service::views::{MeView, SocialAccountView, UserView};
use crate::state::AppState;

pub async fn me(state: &AppState, auth: &AuthUser) -> Result<MeView, ApiError> {
    let accounts = state.store.find_social_accounts(auth.user.id).await?;
    Ok(MeView {
        user: UserView::from(&auth.user),
        social_accounts: accounts.iter().map(SocialAccountView::from).collect(),
    })
}

/// Revokes the token the request was made with.
pub async fn logout(state: &AppState, auth: &AuthUser) -> Result<(), ApiError> {
    state.store.delete_auth_token(&auth.token_hash).await?;
    Ok(())
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct UserUpdate {
    pub referral_code: Option<String>,
}

/// Sets who referred the user, later than signup: once only, never oneself.
pub async fn update(
    state: &AppState,
    auth: &AuthUser,
    update: UserUpdate,
) -> Result<MeView, ApiError> {
    let mut need = Required::default();
    let code = need.field("referral_code", update.referral_code);
    let code = need.check(|| code)?;
    let referrer =
        state
            .store
            .find_user_by_referral_code(&code)
            .await?
            .ok_or(ApiError::FieldCode(
                "referral_code",
                "invalid_referral_code",
            ))?;
    if referrer.id == auth.user.id {
        return Err(ApiError::FieldCode(
            "referral_code",
            "cannot_refer_yourself",
        ));
    }
    let user = state
        .store
        .set_referred_by(auth.user.id, referrer.id)
        .await?
        .ok_or(ApiError::FieldCode(
            "referral_code",
            "referral_code_already_set",
        ))?;
    me(
        state,
        &AuthUser {
            user,
            token_hash: auth.token_hash.clone(),
        },
    )
    .await
}
