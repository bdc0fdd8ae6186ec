//! Who is calling: anonymous (public articles only) or an agent key (internal
//! articles too). Keys are compared in constant time.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::search::Visibility;

/// Keys may be configured as `blake3:<hex>` so the config file never holds
/// the secret itself (`rapport hash-key` prints the form).
pub const HASH_PREFIX: &str = "blake3:";

pub fn hash_key(key: &str) -> String {
    format!("{HASH_PREFIX}{}", blake3::hash(key.as_bytes()).to_hex())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Agent,
    /// Everything an agent may do, plus analytics and operations.
    Admin,
}

impl Caller {
    pub fn visibility(self) -> Visibility {
        match self {
            Caller::Anonymous => Visibility::PublicOnly,
            Caller::Agent | Caller::Admin => Visibility::IncludeInternal,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("the Authorization header must be `Bearer <key>`")]
    Malformed,
    #[error("unknown API key")]
    UnknownKey,
    #[error("this endpoint requires an agent key (`Authorization: Bearer <key>`)")]
    AgentKeyRequired,
    #[error("this endpoint requires an admin key (`Authorization: Bearer <key>`)")]
    AdminKeyRequired,
    #[error("this endpoint requires an admin key; an agent key is not enough")]
    Forbidden,
}

#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    agent: Vec<String>,
    admin: Vec<String>,
    agent_labels: Vec<Option<String>>,
    admin_labels: Vec<Option<String>>,
}

impl ApiKeys {
    pub fn new(agent: Vec<String>) -> Self {
        ApiKeys {
            agent,
            ..ApiKeys::default()
        }
    }

    /// Names for the keys, in configuration order (who claimed a hand-off).
    pub fn with_labels(mut self, agent: Vec<Option<String>>, admin: Vec<Option<String>>) -> Self {
        self.agent_labels = agent;
        self.admin_labels = admin;
        self
    }

    /// The verified caller and the name its key goes by ("Dana", or "agent
    /// 2" for an unlabelled second agent key); `None` for anonymous callers.
    pub fn identify_labelled(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Caller, Option<String>), AuthError> {
        let (caller, id) = self.authenticate(headers)?;
        Ok((caller, id.and_then(|id| self.label(&id))))
    }

    /// A key typed into a form (the dashboard's sign-in) rather than sent in
    /// a header: the verified caller and its name, or `None` for a key we
    /// don't know. The same constant-time comparison as headers.
    pub fn identify_key(&self, key: &str) -> Option<(Caller, Option<String>)> {
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        let (caller, id) = self.check_key(key).ok()?;
        Some((caller, self.label(&id)))
    }

    fn label(&self, id: &str) -> Option<String> {
        let (role, position) = id.split_once(':')?;
        let position: usize = position.parse().ok()?;
        let labels = if role == "admin" {
            &self.admin_labels
        } else {
            &self.agent_labels
        };
        Some(
            labels
                .get(position)
                .cloned()
                .flatten()
                .unwrap_or_else(|| format!("{role} {}", position + 1)),
        )
    }

    pub fn with_admin_keys(mut self, admin: Vec<String>) -> Self {
        self.admin = admin;
        self
    }

    /// No header → anonymous. A header with a key we don't know is an error
    /// rather than a silent downgrade, so a misconfigured agent panel notices.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        self.authenticate(headers).map(|(caller, _)| caller)
    }

    /// The verified key's stable id (`admin:0`, `agent:2`: its role and place
    /// in the configuration), or `None` for no key or a key we don't know.
    /// Rate limits count per key id, so neither random headers nor the same
    /// key written with other spacing buy a fresh bucket.
    pub fn key_id(&self, headers: &HeaderMap) -> Option<String> {
        self.authenticate(headers).ok().and_then(|(_, id)| id)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(Caller, Option<String>), AuthError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok((Caller::Anonymous, None));
        };
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::Malformed)?;
        let (caller, id) = self.check_key(key)?;
        Ok((caller, Some(id)))
    }

    /// The caller and stable id a (trimmed, non-empty) key belongs to.
    fn check_key(&self, key: &str) -> Result<(Caller, String), AuthError> {
        // Check every key so the time taken doesn't reveal which one matched.
        let hashed = hash_key(key);
        let matches = |keys: &[String]| {
            keys.iter()
                .enumerate()
                .fold(None, |found, (position, candidate)| {
                    let (expected, presented) = match candidate.strip_prefix(HASH_PREFIX) {
                        Some(digest) => {
                            (digest.as_bytes(), &hashed.as_bytes()[HASH_PREFIX.len()..])
                        }
                        None => (candidate.as_bytes(), key.as_bytes()),
                    };
                    let equal = constant_time_eq::constant_time_eq(expected, presented);
                    found.or(equal.then_some(position))
                })
        };
        let (admin, agent) = (matches(&self.admin), matches(&self.agent));
        if let Some(position) = admin {
            Ok((Caller::Admin, format!("admin:{position}")))
        } else if let Some(position) = agent {
            Ok((Caller::Agent, format!("agent:{position}")))
        } else {
            Err(AuthError::UnknownKey)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_go_by_their_label_or_their_place() {
        let keys = ApiKeys::new(vec!["k1".into(), "k2".into()])
            .with_admin_keys(vec!["boss".into()])
            .with_labels(vec![Some("Dana".into())], Vec::new());
        let named = |key: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
            keys.identify_labelled(&headers).unwrap()
        };
        assert_eq!(named("k1"), (Caller::Agent, Some("Dana".into())));
        assert_eq!(named("k2"), (Caller::Agent, Some("agent 2".into())));
        assert_eq!(named("boss"), (Caller::Admin, Some("admin 1".into())));
        assert_eq!(
            keys.identify_labelled(&HeaderMap::new()).unwrap(),
            (Caller::Anonymous, None)
        );
    }

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn identifies_callers() {
        let keys = ApiKeys::new(vec!["s3cret".into()]);
        assert_eq!(keys.identify(&HeaderMap::new()), Ok(Caller::Anonymous));
        assert_eq!(keys.identify(&headers("Bearer s3cret")), Ok(Caller::Agent));
        assert_eq!(
            keys.identify(&headers("Bearer nope")),
            Err(AuthError::UnknownKey)
        );
        assert_eq!(
            keys.identify(&headers("Basic abc")),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn hashed_keys_and_admin_roles() {
        let keys =
            ApiKeys::new(vec![hash_key("agent-secret")]).with_admin_keys(vec!["boss".into()]);
        assert_eq!(
            keys.identify(&headers("Bearer agent-secret")),
            Ok(Caller::Agent)
        );
        assert_eq!(
            keys.identify(&headers(&format!("Bearer {}", hash_key("agent-secret")))),
            Err(AuthError::UnknownKey),
            "the hash itself is not a key"
        );
        assert_eq!(keys.identify(&headers("Bearer boss")), Ok(Caller::Admin));
    }

    #[test]
    fn keys_from_forms_are_checked_like_headers() {
        let keys = ApiKeys::new(vec![hash_key("agent-secret")])
            .with_admin_keys(vec!["boss".into()])
            .with_labels(Vec::new(), vec![Some("Lee".into())]);
        assert_eq!(
            keys.identify_key(" boss "),
            Some((Caller::Admin, Some("Lee".into())))
        );
        assert_eq!(
            keys.identify_key("agent-secret"),
            Some((Caller::Agent, Some("agent 1".into())))
        );
        assert_eq!(keys.identify_key("nope"), None);
        assert_eq!(keys.identify_key("  "), None);
    }

    #[test]
    fn key_ids_name_the_verified_key_not_the_header() {
        let keys =
            ApiKeys::new(vec!["a1".into(), hash_key("a2")]).with_admin_keys(vec!["boss".into()]);
        assert_eq!(
            keys.key_id(&headers("Bearer a1")).as_deref(),
            Some("agent:0")
        );
        assert_eq!(
            keys.key_id(&headers("Bearer   a2  ")).as_deref(),
            Some("agent:1"),
            "spacing does not make another key"
        );
        assert_eq!(
            keys.key_id(&headers("Bearer boss")).as_deref(),
            Some("admin:0")
        );
        assert_eq!(keys.key_id(&headers("Bearer random")), None);
        assert_eq!(keys.key_id(&headers("Basic x")), None);
        assert_eq!(keys.key_id(&HeaderMap::new()), None);
    }
}
