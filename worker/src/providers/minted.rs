//! Client secrets minted rather than configured: Sign in with Apple takes
//! as `client_secret` an ES256 JWT (`iss` the team, `sub` the client id,
//! `aud` Apple's issuer, `kid` the key's id) signed with the `.p8` key.
//! One is minted per provider and worker process, kept, and minted again
//! once less than a tenth of its lifetime is left.

use super::ProviderError;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use socialauth_common::catalogue::{ProviderConfig, SecretMinting};
use socialauth_common::secret::Secret;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// How long before now a minted secret says it was issued.
const ISSUED_BEFORE_SECS: i64 = 60;

/// The minted secrets of a worker process, by provider.
#[derive(Debug, Default)]
pub(super) struct MintedSecrets {
    kept: Mutex<HashMap<String, (Secret, i64)>>,
}

impl MintedSecrets {
    /// `p`'s client secret: its configured one, or a minted one still good
    /// for more than a tenth of its lifetime.
    pub(super) fn get(&self, p: &ProviderConfig, now_secs: i64) -> Result<Secret, ProviderError> {
        let Some(minting) = &p.minted_secret else {
            return Ok(p.client_secret.clone());
        };
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((secret, exp)) = kept.get(p.name.as_str())
            && exp.saturating_sub(now_secs) > minting.ttl_secs / 10
        {
            return Ok(secret.clone());
        }
        let (secret, exp) = mint(minting, &p.client_id, now_secs)?;
        // Not an expiry to alert on (it renews itself): a count of mints.
        metrics::counter!(
            "socialauth_client_secrets_minted_total",
            "provider" => p.name.as_str().to_owned(),
        )
        .increment(1);
        kept.insert(p.name.as_str().to_owned(), (secret.clone(), exp));
        Ok(secret)
    }
}

/// A new client secret for `client_id`, and its `exp`.
pub(super) fn mint(
    m: &SecretMinting,
    client_id: &str,
    now_secs: i64,
) -> Result<(Secret, i64), ProviderError> {
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, m.key.expose()).map_err(
        |_| ProviderError::Misconfigured("private_key: not a P-256 (ES256) PKCS#8 key".into()),
    )?;
    // Issued a minute ago: a clock a little ahead of the provider's never
    // makes `iat` lie in its future, nor the lifetime exceed its limit.
    let iat = now_secs.saturating_sub(ISSUED_BEFORE_SECS);
    let exp = iat.saturating_add(m.ttl_secs);
    let header = serde_json::json!({"alg": "ES256", "kid": m.key_id, "typ": "JWT"});
    let claims = serde_json::json!({
        "iss": m.team_id,
        "iat": iat,
        "exp": exp,
        "aud": m.audience,
        "sub": client_id,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map_err(|_| ProviderError::Misconfigured("private_key: signing failed".into()))?;
    Ok((
        Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )),
        exp,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, UnparsedPublicKey};

    fn minting(ttl_secs: i64) -> (SecretMinting, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("pair")
            .public_key()
            .as_ref()
            .to_vec();
        (
            SecretMinting {
                team_id: "TEAM123456".into(),
                key_id: "KEY1234567".into(),
                key: Secret::new(pkcs8.as_ref().to_vec()),
                audience: "https://appleid.apple.com".into(),
                ttl_secs,
            },
            public,
        )
    }

    fn part(jwt: &str, i: usize) -> serde_json::Value {
        let raw = URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).expect("part"))
            .expect("base64url");
        serde_json::from_slice(&raw).expect("json")
    }

    #[test]
    fn a_minted_secret_is_an_es256_jwt_apple_can_verify() {
        let (m, public) = minting(86_400);
        let (secret, exp) = mint(&m, "com.example.web", 1_800_000_000).expect("minted");
        let jwt = secret.expose();
        assert_eq!(
            part(jwt, 0),
            serde_json::json!({"alg": "ES256", "kid": "KEY1234567", "typ": "JWT"})
        );
        assert_eq!(
            part(jwt, 1),
            serde_json::json!({
                "iss": "TEAM123456", "iat": 1_799_999_940, "exp": 1_800_086_340,
                "aud": "https://appleid.apple.com", "sub": "com.example.web",
            })
        );
        assert_eq!(exp, 1_800_086_340);
        let (signed, signature) = jwt.rsplit_once('.').expect("signature");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(
                signed.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
            )
            .expect("the signature verifies with the key's public half");
        assert_eq!(
            socialauth_common::catalogue::client_secret_expiry(jwt),
            Some(1_800_086_340)
        );
    }

    /// An `apple` provider as configured, with `pkcs8` as its `.p8` key.
    fn apple(pkcs8: &[u8], ttl_secs: u64) -> ProviderConfig {
        let body = base64::engine::general_purpose::STANDARD.encode(pkcs8);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let dir = std::env::temp_dir().join(format!("socialauth-minted-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            format!(
                "[providers.apple]\npreset = \"apple\"\nclient_id = \"com.example.web\"\n\
                 team_id = \"TEAM123456\"\nkey_id = \"KEY1234567\"\n\
                 client_secret_ttl_secs = {ttl_secs}\nprivate_key = \"\"\"\n{pem}\"\"\"\n"
            ),
        )
        .expect("write");
        let settings = socialauth_common::config::Settings::load_with_env(Some(&path), vec![])
            .expect("settings");
        std::fs::remove_dir_all(&dir).ok();
        let catalogue =
            socialauth_common::catalogue::Catalogue::from_settings(&settings).expect("catalogue");
        (**catalogue.get("apple").expect("apple")).clone()
    }

    #[test]
    fn a_key_that_cannot_sign_stops_the_start() {
        let p = apple(b"thirty-two bytes that are no key", 3_600);
        let err = mint(p.minted_secret.as_ref().expect("minted"), &p.client_id, 0)
            .expect_err("not a P-256 key");
        assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
        let rng = SystemRandom::new();
        let good =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        assert!(
            mint(
                apple(good.as_ref(), 3_600)
                    .minted_secret
                    .as_ref()
                    .expect("minted"),
                "id",
                0
            )
            .is_ok()
        );
    }

    #[test]
    fn a_configured_key_mints_secrets_kept_then_renewed_before_they_expire() {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let p = apple(pkcs8.as_ref(), 1_000);
        let m = p.minted_secret.as_ref().expect("minted");
        assert_eq!(m.audience, "https://appleid.apple.com");
        assert_eq!(m.key.expose(), pkcs8.as_ref());
        let secrets = MintedSecrets::default();
        let first = secrets.get(&p, 1_000_000).expect("first");
        assert_eq!(part(first.expose(), 1)["sub"], "com.example.web");
        // Minted at 1,000,000 as issued at 999,940: it expires at 1,000,940.
        assert_eq!(secrets.get(&p, 1_000_800).expect("kept"), first);
        // Less than a tenth (100 s) left: a new one.
        let renewed = secrets.get(&p, 1_000_841).expect("renewed");
        assert_ne!(renewed, first);
        assert_eq!(
            socialauth_common::catalogue::client_secret_expiry(renewed.expose()),
            Some(1_001_781)
        );
        // A key that is not P-256 is refused when a secret is minted.
        let bad = ProviderConfig {
            minted_secret: Some(SecretMinting {
                key: Secret::new(b"not a key".to_vec()),
                ..m.clone()
            }),
            ..p.clone()
        };
        assert!(matches!(
            MintedSecrets::default().get(&bad, 1_000_000),
            Err(ProviderError::Misconfigured(_))
        ));
    }
}
