//! `diplog.v1.Admin`: API tokens (admin role only, checked by the auth layer).

use tonic::{Request, Response, Status};

use super::convert::{timestamp, to_timestamp};
use super::status::invalid;
use crate::auth::Role;
use crate::auth::authenticate::Authenticator;
use crate::auth::tokens::{TokenInfo, TokenName, TokenStore};
use crate::proto::{self, admin_server::Admin};

pub struct AdminService {
    tokens: TokenStore,
    /// Told of a revocation at once, so this server refuses the token from the next call.
    authenticator: Authenticator,
}

impl AdminService {
    pub fn new(tokens: TokenStore, authenticator: Authenticator) -> Self {
        Self {
            tokens,
            authenticator,
        }
    }
}

pub fn token_info(info: TokenInfo) -> proto::TokenInfo {
    proto::TokenInfo {
        name: info.name,
        roles: info.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        created_at: Some(to_timestamp(info.created_at)),
        expires_at: info.expires_at.map(to_timestamp),
        revoked_at: info.revoked_at.map(to_timestamp),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn create_token(
        &self,
        request: Request<proto::CreateTokenRequest>,
    ) -> Result<Response<proto::CreatedToken>, Status> {
        let request = request.into_inner();
        let name = TokenName::parse(&request.name)?;
        let roles = request
            .roles
            .iter()
            .map(|role| role.parse::<Role>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("roles", e.to_string()))?;
        let expires_at = request
            .expires_at
            .map(timestamp)
            .transpose()
            .map_err(|e| invalid("expires_at", e.to_string()))?;
        let (info, secret) = self.tokens.create(&name, &roles, expires_at).await?;
        tracing::info!(name = %info.name, roles = ?info.roles, "token created");
        Ok(Response::new(proto::CreatedToken {
            token: secret.expose().to_owned(),
            info: Some(token_info(info)),
        }))
    }

    async fn list_tokens(
        &self,
        _request: Request<()>,
    ) -> Result<Response<proto::TokenList>, Status> {
        let tokens = self.tokens.list().await?;
        Ok(Response::new(proto::TokenList {
            tokens: tokens.into_iter().map(token_info).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn revoke_token(
        &self,
        request: Request<proto::RevokeTokenRequest>,
    ) -> Result<Response<()>, Status> {
        self.tokens.revoke(&request.get_ref().name).await?;
        self.authenticator.forget_cached_tokens();
        tracing::info!(name = %request.get_ref().name, "token revoked");
        Ok(Response::new(()))
    }
}
