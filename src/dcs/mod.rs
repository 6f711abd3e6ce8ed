//! The DCS migration-task API client: wire models, the SDK-HMAC-SHA256 signer, endpoints,
//! typed errors, retries, client-side throttling and scrubbing of secrets from answers.

pub mod cached;
pub mod chain;
pub mod client;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod keyless;
pub mod lenient;
pub mod model;
pub mod operation;
pub mod page;
pub mod scrub;
pub mod signer;
pub mod source;
pub mod temporary;

pub use cached::CachedCredentials;
pub use client::{CallObserver, ClientConfig, DcsClient, InFlight, RateLimit, RetryPolicy};
pub use credentials::Credentials;
pub use endpoint::Endpoint;
pub use error::{ApiError, DcsError, ErrorClass};
pub use operation::Operation;
pub use source::{CredentialSource, Provide};
pub use temporary::{TemporaryCredentialError, TemporaryCredentials};
