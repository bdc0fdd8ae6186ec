//! TLS to PostgreSQL, with libpq's `sslmode` meanings, so a managed
//! database's connection string works as its provider documents it:
//!
//! | `sslmode` | encrypted | server's certificate checked |
//! |---|---|---|
//! | `disable` | no | — |
//! | `prefer` (the default) | when the server offers it | no |
//! | `require` | yes | no |
//! | `verify-full` | yes | chain and host name: against `sslrootcert` (a PEM file), else the system's trust store |
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require` and
//! leaves checking to the TLS connector, so `verify-full` and `sslrootcert`
//! are taken out of the URL here and become the connector's verifier
//! (rustls, with the ring provider the webhooks already use).
//! `verify-ca` (the chain without the host name) is refused: use
//! `verify-full`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// A parsed database URL and the TLS connector its `sslmode` asks for.
pub(super) struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    /// `verify-full`: the server proved who it is.
    pub verified: bool,
}

fn invalid(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Postgres(format!("database URL not understood: {reason}"))
}

/// Parses a `postgres://` URL, taking `sslmode=verify-full` and
/// `sslrootcert` out of it (see the module's doc).
pub(super) fn target(url: &str) -> Result<Target, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| invalid(format!("{key} is not UTF-8")))?
            .into_owned();
        match key {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => kept.push(pair),
        }
    }
    let mode = mode.unwrap_or_else(|| "prefer".to_string());
    let (driver_mode, verify) = match mode.as_str() {
        "disable" | "allow" => ("disable", false),
        "prefer" => ("prefer", false),
        "require" => ("require", false),
        "verify-full" => ("require", true),
        "verify-ca" => {
            return Err(invalid(
                "sslmode=verify-ca is not supported (it skips the host name): use verify-full",
            ));
        }
        other => return Err(invalid(format!("unknown sslmode={other}"))),
    };
    if root.is_some() && !verify {
        return Err(invalid(
            "sslrootcert is used only with sslmode=verify-full (other modes do not check the certificate)",
        ));
    }
    kept.push(match driver_mode {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    let rebuilt = format!("{base}?{}", kept.join("&"));
    let config: tokio_postgres::Config = rebuilt.parse().map_err(invalid)?;
    let client = if verify {
        verifying(root.as_deref())?
    } else {
        encrypting_only()
    };
    Ok(Target {
        config,
        tls: MakeRustlsConnect::new(client),
        verified: verify,
    })
}

fn verifying(root: Option<&str>) -> Result<ClientConfig, StoreError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?;
    match root {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| invalid(format!("sslrootcert {path}: {e}")))?;
            for certificate in certificates {
                let certificate =
                    certificate.map_err(|e| invalid(format!("sslrootcert {path}: {e}")))?;
                roots
                    .add(certificate)
                    .map_err(|e| invalid(format!("sslrootcert {path}: {e}")))?;
            }
            if roots.is_empty() {
                return Err(invalid(format!("sslrootcert {path} holds no certificate")));
            }
            Ok(builder.with_root_certificates(roots).with_no_client_auth())
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            Ok(builder
                .with_platform_verifier()
                .map_err(|e| invalid(format!("the system's trust store: {e}")))?
                .with_no_client_auth())
        }
    }
}

/// `prefer` and `require`: encrypted, the certificate not checked (as
/// libpq does without a root certificate). The handshake's own signatures
/// are still checked, so the session is bound to the key the server showed.
fn encrypting_only() -> ClientConfig {
    let provider = provider();
    ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        // The ring provider supports the default versions.
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth()
}

/// ring, as the webhooks' client (ureq) uses: aws-lc-rs, the provider
/// with post-quantum key exchange, would add a C and CMake build.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmodes_follow_libpq() {
        let plain = target("postgres://u@db/rapport").unwrap();
        assert_eq!(
            plain.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
        assert!(!plain.verified);
        let required =
            target("postgres://u@db/rapport?sslmode=require&application_name=x").unwrap();
        assert_eq!(
            required.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(required.config.get_application_name(), Some("x"));
        let verified = target("postgres://u@db/rapport?sslmode=verify-full").unwrap();
        assert_eq!(
            verified.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert!(verified.verified);
        let off = target("postgres://u@db/rapport?sslmode=disable").unwrap();
        assert_eq!(
            off.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_with_the_reason() {
        for (url, says) in [
            ("postgres://u@db/r?sslmode=verify-ca", "verify-full"),
            ("postgres://u@db/r?sslmode=maybe", "unknown sslmode=maybe"),
            (
                "postgres://u@db/r?sslrootcert=/ca.pem",
                "only with sslmode=verify-full",
            ),
            (
                "postgres://u@db/r?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                "sslrootcert /nonexistent/ca.pem",
            ),
        ] {
            let error = target(url).err().expect(url).to_string();
            assert!(error.contains(says), "{url}: {error}");
        }
    }
}
