//! The client side: attaching a token to every call a CLI command makes.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::tokens::BearerToken;

/// A channel whose calls carry `authorization: Bearer <token>` (or nothing, without a token).
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// Adds the token to each call. The header is marked sensitive, so HTTP/2 never indexes it.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

/// A token that cannot be sent as a header (it is not printed: it may be a real secret).
#[derive(Debug, thiserror::Error)]
#[error("the token holds characters a header cannot carry; check --token / DIPLOG_TOKEN")]
pub struct UnsendableToken;

impl Bearer {
    pub fn new(token: Option<&BearerToken>) -> Result<Self, UnsendableToken> {
        let Some(token) = token else {
            return Ok(Self(None));
        };
        let mut value: MetadataValue<Ascii> = format!("Bearer {}", token.expose())
            .parse()
            .map_err(|_| UnsendableToken)?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }

    pub fn channel(self, channel: Channel) -> AuthChannel {
        InterceptedService::new(channel, self)
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
