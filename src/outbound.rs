//! Outbound HTTP (hand-off webhooks, `rapport model fetch`): one way to build
//! a client, so both trust the same certificates and say who they are.

use ureq::config::ConfigBuilder;
use ureq::typestate::AgentScope;

/// A blocking client with rustls (ring) trusting the system's certificate
/// store, so proxies with their own CA work, and a `rapport/<version>`
/// user agent; `configure` adds the caller's timeouts and policies.
pub fn agent(
    configure: impl FnOnce(ConfigBuilder<AgentScope>) -> ConfigBuilder<AgentScope>,
) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig};
    configure(ureq::Agent::config_builder())
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        )
        .user_agent(concat!("rapport/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}
