//! Random secrets, app-token hashes, PKCE, and the sealing of provider
//! tokens at rest: AES-256-GCM-SIV bound to the row and column each value
//! is stored in (older AES-256-GCM ciphertexts still open).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aes_gcm_siv::{Aes256GcmSiv, Nonce as SivNonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("encryption key must be base64 of 32 bytes")]
    BadKey,
    #[error("no encryption key with id {0:?}")]
    UnknownKeyId(String),
    #[error("ciphertext could not be decrypted")]
    Decrypt,
}

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    for chunk in bytes.chunks_mut(32) {
        let r: [u8; 32] = rand::random();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a token, lowercase hex: how app tokens, states and codes are
/// looked up without being stored.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

/// The secrets a job hands out — the app token of a login, the partial
/// token of a stopped one — derived from the job's id with a server key
/// (HMAC-SHA256), so they are stored only as hashes and yet the same
/// token can be shown again: to a retry of the same code within its
/// window, to the one poll of a job answered with 202. Without the key a
/// job id says nothing about its token.
///
/// One derivation key per encryption key, the current one first: a token
/// is made with the current key, and shown again with whichever key made
/// it (a key rotated in between, a rolling deploy whose processes do not
/// agree yet on the current key: [`crate::reissue`]). The redirect flow's
/// login state names the key its PKCE verifier and nonce are made with.
#[derive(Clone)]
pub struct JobSecrets {
    /// (key id, derivation key), the current key first.
    keys: Vec<(String, [u8; 32])>,
}

impl fmt::Debug for JobSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSecrets").finish_non_exhaustive()
    }
}

/// A derived secret and the SHA-256 hex that is stored in its place.
pub struct Issued {
    pub token: crate::secret::Secret,
    pub hash: String,
}

/// Between a login state's random part and the id of the key its verifier
/// and nonce are made with (base64url never holds it).
const STATE_KEY_SEPARATOR: char = '.';

impl JobSecrets {
    /// The derivation key of each encryption key: HMAC-SHA256 of a fixed
    /// label keyed with it, so it is never the encryption key itself.
    fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|(id, key)| {
                    (
                        id.to_owned(),
                        hmac_sha256(key, b"socialauth job secrets v1"),
                    )
                })
                .collect(),
        }
    }

    fn current(&self) -> &[u8; 32] {
        // `TokenCipher::new` never makes one without its current key.
        &self.keys[0].1
    }

    /// The app token that job `job` issues.
    pub fn app_token(&self, job: uuid::Uuid) -> Issued {
        derive(self.current(), b"app-token", job)
    }

    /// The app token job `job` issued, for each key it may have been made
    /// with, the current key first.
    pub fn app_tokens(&self, job: uuid::Uuid) -> Vec<Issued> {
        self.with_every_key(b"app-token", job)
    }

    /// The partial token of the login that job `job` stopped.
    pub fn partial_token(&self, job: uuid::Uuid) -> Issued {
        derive(self.current(), b"partial-token", job)
    }

    /// The partial token job `job` made, for each key it may have been
    /// made with, the current key first.
    pub fn partial_tokens(&self, job: uuid::Uuid) -> Vec<Issued> {
        self.with_every_key(b"partial-token", job)
    }

    /// `purpose`'s secret of `job` with each key, the current one first.
    fn with_every_key(&self, purpose: &[u8], job: uuid::Uuid) -> Vec<Issued> {
        self.keys
            .iter()
            .map(|(_, key)| derive(key, purpose, job))
            .collect()
    }

    /// A new login state for the redirect flow: random, naming the current
    /// key, which makes its PKCE verifier and nonce.
    pub fn new_state(&self) -> String {
        format!(
            "{}{STATE_KEY_SEPARATOR}{}",
            random_token(32),
            self.keys[0].0
        )
    }

    /// The PKCE verifier of the redirect flow's login state `state`: made
    /// again from the state the client brings back, so it is never stored.
    /// `None`: the state names a key this process does not know.
    pub fn pkce_verifier(&self, state: &str) -> Option<crate::secret::Secret> {
        self.of_state(b"pkce-verifier", state)
    }

    /// The OpenID Connect nonce of the login state `state`, likewise.
    pub fn nonce(&self, state: &str) -> Option<crate::secret::Secret> {
        self.of_state(b"oidc-nonce", state)
    }

    /// `purpose`'s secret of `state`, with the key the state names.
    fn of_state(&self, purpose: &[u8], state: &str) -> Option<crate::secret::Secret> {
        let key = self.state_key(state)?;
        Some(crate::secret::Secret::new(derive_text(
            key,
            purpose,
            state.as_bytes(),
        )))
    }

    /// The key a state names; the current key for a state that names none
    /// (made before states named their key).
    fn state_key(&self, state: &str) -> Option<&[u8; 32]> {
        match state.split_once(STATE_KEY_SEPARATOR) {
            None => Some(self.current()),
            Some((_, id)) => self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| key),
        }
    }
}

fn derive(key: &[u8; 32], purpose: &[u8], job: uuid::Uuid) -> Issued {
    let token = derive_text(key, purpose, job.as_bytes());
    Issued {
        hash: hash_token(&token),
        token: crate::secret::Secret::new(token),
    }
}

/// base64url of HMAC-SHA256(key, purpose ‖ 0 ‖ input): 43 characters.
fn derive_text(key: &[u8; 32], purpose: &[u8], input: &[u8]) -> String {
    let mut message = Vec::with_capacity(purpose.len() + 1 + input.len());
    message.extend_from_slice(purpose);
    message.push(0);
    message.extend_from_slice(input);
    URL_SAFE_NO_PAD.encode(hmac_sha256(key, &message))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    // HMAC takes a key of any length.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// A referral code: 10 characters without look-alikes (0/O, 1/I).
pub fn referral_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes: [u8; 10] = rand::random();
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// PKCE S256 challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh 32-byte key, base64: what `security.encryption_key` holds.
pub fn generate_key() -> String {
    let key: [u8; 32] = rand::random();
    STANDARD.encode(key)
}

/// How a stored ciphertext was made, told by its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealFormat {
    /// AES-256-GCM without associated data: base64 of nonce ‖ ciphertext ‖
    /// tag. What was written before ciphertexts were bound to their place;
    /// still opened, no longer written.
    V1,
    /// AES-256-GCM-SIV (RFC 8452) with the [`Binding`] as associated data:
    /// [`V2_PREFIX`] then base64 of nonce ‖ ciphertext ‖ tag.
    V2,
}

/// What a v2 ciphertext starts with (base64 never holds a `:`, so no v1
/// ciphertext does).
pub const V2_PREFIX: &str = "v2:";

impl SealFormat {
    /// The format [`TokenCipher::seal`] writes.
    pub const CURRENT: Self = Self::V2;

    pub fn of(data: &str) -> Self {
        if data.starts_with(V2_PREFIX) {
            Self::V2
        } else {
            Self::V1
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// A sealed column of `social_accounts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenColumn {
    AccessToken,
    RefreshToken,
    /// OAuth 1.0a: the access token's secret.
    TokenSecret,
}

impl TokenColumn {
    /// The column's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token_enc",
            Self::RefreshToken => "refresh_token_enc",
            Self::TokenSecret => "token_secret_enc",
        }
    }
}

/// Where a sealed value is stored: the associated data of a v2
/// ciphertext, so that one copied to another row or another column does
/// not open. Each row is named by a key it has before it is written and
/// keeps for its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    /// A provider token of a link, named by its identity (`provider`,
    /// `uid`: unique, never changed) rather than its row id, which a
    /// sign-in's new link does not have when its tokens are sealed.
    Account {
        provider: &'a str,
        uid: &'a str,
        column: TokenColumn,
    },
    /// An OAuth 1.0a request token's secret, by its `oauth_token`.
    RequestToken {
        provider: &'a str,
        oauth_token: &'a str,
    },
    /// A partial login's provider answer, by its partial token's hash.
    PartialLogin {
        provider: &'a str,
        token_hash: &'a str,
    },
}

/// The associated data's first bytes: the format's label.
const AAD_LABEL: &[u8] = b"socialauth sealed v2";

impl Binding<'_> {
    /// The label, then the table, the provider, the row's key and the
    /// column, each after its length (8 bytes, big-endian): no two
    /// bindings give the same bytes.
    fn associated_data(&self) -> Vec<u8> {
        let fields = match *self {
            Self::Account {
                provider,
                uid,
                column,
            } => ["social_accounts", provider, uid, column.as_str()],
            Self::RequestToken {
                provider,
                oauth_token,
            } => [
                "oauth1_request_tokens",
                provider,
                oauth_token,
                "token_secret_enc",
            ],
            Self::PartialLogin {
                provider,
                token_hash,
            } => ["partial_logins", provider, token_hash, "data_enc"],
        };
        let mut out =
            Vec::with_capacity(AAD_LABEL.len() + fields.iter().map(|f| 8 + f.len()).sum::<usize>());
        out.extend_from_slice(AAD_LABEL);
        for field in fields {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

/// One key, as each format uses it.
#[derive(Clone)]
struct Key {
    gcm: Aes256Gcm,
    siv: Aes256GcmSiv,
}

/// Seals with the current key in the current format, bound to where the
/// value is stored; opens what any known key sealed, in either format.
/// Derives the [`JobSecrets`] from the current key.
///
/// New ciphertexts are AES-256-GCM-SIV with a random 96-bit nonce: a nonce
/// drawn twice under one key does not reveal the key or let anyone forge
/// (AES-GCM's failure), it only shows whether the same value was sealed
/// for the same place twice, so a key has no practical budget of
/// encryptions. Keys are still rotated, and every token moved to the
/// current one, by a re-encryption (`POST /admin/reencrypt`).
#[derive(Clone)]
pub struct TokenCipher {
    current: String,
    keys: HashMap<String, Key>,
    secrets: JobSecrets,
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCipher")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// A ciphertext with the id of the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// The ciphertext as stored ([`SealFormat`]).
    pub data: String,
}

/// Nonce and tag: the shortest ciphertext, of an empty value.
const NONCE_AND_TAG: usize = 12 + 16;

impl TokenCipher {
    /// `keys`: (key id, base64 key); `current_id` names the one to seal with.
    pub fn new<'a>(
        current_id: &str,
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, CryptoError> {
        let mut map = HashMap::new();
        let mut raws: Vec<(&str, Vec<u8>)> = Vec::new();
        for (id, b64) in keys {
            let raw = STANDARD
                .decode(b64.trim())
                .map_err(|_| CryptoError::BadKey)?;
            let key = Key {
                gcm: Aes256Gcm::new_from_slice(&raw).map_err(|_| CryptoError::BadKey)?,
                siv: Aes256GcmSiv::new_from_slice(&raw).map_err(|_| CryptoError::BadKey)?,
            };
            map.insert(id.to_owned(), key);
            raws.push((id, raw));
        }
        if !map.contains_key(current_id) {
            return Err(CryptoError::UnknownKeyId(current_id.to_owned()));
        }
        // The current key first.
        raws.sort_by_key(|(id, _)| *id != current_id);
        let secrets = JobSecrets::new(raws.iter().map(|(id, raw)| (*id, raw.as_slice())));
        Ok(Self {
            current: current_id.to_owned(),
            keys: map,
            secrets,
        })
    }

    /// The secrets jobs hand out, derived from the current key.
    pub fn job_secrets(&self) -> &JobSecrets {
        &self.secrets
    }

    /// The id of the key [`TokenCipher::seal`] seals with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Whether a value stored under `key_id` is sealed as
    /// [`TokenCipher::seal`] seals now: with the current key, in the
    /// current format.
    pub fn is_current(&self, key_id: &str, data: &str) -> bool {
        key_id == self.current && SealFormat::of(data) == SealFormat::CURRENT
    }

    /// `plaintext` sealed with the current key for the place `binding`
    /// names (v2).
    pub fn seal(&self, plaintext: &str, binding: Binding<'_>) -> Sealed {
        let nonce_bytes: [u8; 12] = rand::random();
        let aad = binding.associated_data();
        let key = &self.keys[&self.current];
        // Sealing an in-memory buffer fails only past 64 GiB.
        let ct = key
            .siv
            .encrypt(
                &SivNonce::from(nonce_bytes),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_AND_TAG + plaintext.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Sealed {
            key_id: self.current.clone(),
            data: format!("{V2_PREFIX}{}", STANDARD.encode(out)),
        }
    }

    /// Opens what any known key sealed for the place `binding` names: a v2
    /// ciphertext of another place does not open; a v1 ciphertext (bound
    /// to nothing) opens anywhere.
    pub fn open(&self, sealed: &Sealed, binding: Binding<'_>) -> Result<String, CryptoError> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| CryptoError::UnknownKeyId(sealed.key_id.clone()))?;
        let (format, text) = match sealed.data.strip_prefix(V2_PREFIX) {
            Some(rest) => (SealFormat::V2, rest),
            None => (SealFormat::V1, sealed.data.as_str()),
        };
        let raw = STANDARD.decode(text).map_err(|_| CryptoError::Decrypt)?;
        if raw.len() < NONCE_AND_TAG {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce_bytes: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Decrypt)?;
        let pt = match format {
            SealFormat::V2 => {
                let aad = binding.associated_data();
                key.siv
                    .decrypt(&SivNonce::from(nonce_bytes), Payload { msg: ct, aad: &aad })
            }
            SealFormat::V1 => key.gcm.decrypt(&Nonce::from(nonce_bytes), ct),
        }
        .map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(pt).map_err(|_| CryptoError::Decrypt)
    }

    /// A stored value opened and sealed again as [`TokenCipher::seal`]
    /// seals now, for the same place.
    pub fn reseal(&self, sealed: &Sealed, binding: Binding<'_>) -> Result<Sealed, CryptoError> {
        let plaintext = crate::secret::Secret::new(self.open(sealed, binding)?);
        Ok(self.seal(plaintext.expose(), binding))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_urlsafe() {
        let a = random_token(32);
        let b = random_token(32);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pkce_matches_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    const ALICE_ACCESS: Binding<'static> = Binding::Account {
        provider: "corp",
        uid: "alice",
        column: TokenColumn::AccessToken,
    };

    /// `plaintext` as releases before v2 sealed it: AES-256-GCM, no
    /// associated data, base64 of nonce ‖ ciphertext ‖ tag.
    fn seal_v1(key_b64: &str, plaintext: &str) -> String {
        let raw = STANDARD.decode(key_b64).expect("key");
        let cipher = Aes256Gcm::new_from_slice(&raw).expect("key");
        let nonce: [u8; 12] = rand::random();
        let ct = cipher
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .expect("seal");
        STANDARD.encode([nonce.as_slice(), &ct].concat())
    }

    #[test]
    fn seal_round_trips_and_rotates() {
        let old = generate_key();
        let new = generate_key();
        let c1 = TokenCipher::new("k1", [("k1", old.as_str())]).expect("key");
        let sealed = c1.seal("provider-token", ALICE_ACCESS);
        assert!(!sealed.data.contains("provider-token"));
        assert!(sealed.data.starts_with(V2_PREFIX), "{}", sealed.data);
        assert_eq!(SealFormat::of(&sealed.data), SealFormat::V2);
        assert_eq!(
            c1.open(&sealed, ALICE_ACCESS).expect("open"),
            "provider-token"
        );
        let c2 =
            TokenCipher::new("k2", [("k2", new.as_str()), ("k1", old.as_str())]).expect("keys");
        assert_eq!(
            c2.open(&sealed, ALICE_ACCESS).expect("open"),
            "provider-token"
        );
        assert_eq!(c2.seal("x", ALICE_ACCESS).key_id, "k2");
        assert_eq!(c2.current_key_id(), "k2");
        assert!(!c2.is_current(&sealed.key_id, &sealed.data));
        let moved = c2.reseal(&sealed, ALICE_ACCESS).expect("reseal");
        assert!(c2.is_current(&moved.key_id, &moved.data));
        assert_eq!(
            c2.open(&moved, ALICE_ACCESS).expect("open"),
            "provider-token"
        );
        // Without the old key, only the moved value opens.
        let c3 = TokenCipher::new("k2", [("k2", new.as_str())]).expect("key");
        assert!(matches!(
            c3.open(&sealed, ALICE_ACCESS),
            Err(CryptoError::UnknownKeyId(_))
        ));
        assert_eq!(
            c3.open(&moved, ALICE_ACCESS).expect("open"),
            "provider-token"
        );
    }

    #[test]
    fn gcm_siv_round_trips_every_length_with_fresh_nonces() {
        let c = TokenCipher::new("k1", [("k1", generate_key().as_str())]).expect("key");
        for len in [0, 1, 15, 16, 17, 255, 4096] {
            let value = "t".repeat(len);
            let a = c.seal(&value, ALICE_ACCESS);
            let b = c.seal(&value, ALICE_ACCESS);
            assert_ne!(a.data, b.data, "a nonce per seal");
            assert_eq!(c.open(&a, ALICE_ACCESS).expect("open"), value);
            let raw = STANDARD
                .decode(a.data.trim_start_matches(V2_PREFIX))
                .expect("b64");
            assert_eq!(raw.len(), NONCE_AND_TAG + len);
        }
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_column_does_not_open() {
        let c = TokenCipher::new("k1", [("k1", generate_key().as_str())]).expect("key");
        let sealed = c.seal("alice's token", ALICE_ACCESS);
        let elsewhere = [
            // Bob's row (a row swap).
            Binding::Account {
                provider: "corp",
                uid: "bob",
                column: TokenColumn::AccessToken,
            },
            // The same uid at another provider.
            Binding::Account {
                provider: "github",
                uid: "alice",
                column: TokenColumn::AccessToken,
            },
            // Alice's refresh token's column.
            Binding::Account {
                provider: "corp",
                uid: "alice",
                column: TokenColumn::RefreshToken,
            },
            Binding::Account {
                provider: "corp",
                uid: "alice",
                column: TokenColumn::TokenSecret,
            },
            // Another table whose key happens to be the same text.
            Binding::RequestToken {
                provider: "corp",
                oauth_token: "alice",
            },
            Binding::PartialLogin {
                provider: "corp",
                token_hash: "alice",
            },
            // Fields that run together the same way.
            Binding::Account {
                provider: "cor",
                uid: "palice",
                column: TokenColumn::AccessToken,
            },
        ];
        for binding in elsewhere {
            assert!(
                matches!(c.open(&sealed, binding), Err(CryptoError::Decrypt)),
                "{binding:?}"
            );
        }
        assert_eq!(
            c.open(&sealed, ALICE_ACCESS).expect("open"),
            "alice's token"
        );
    }

    #[test]
    fn a_v1_ciphertext_opens_wherever_it_is_and_is_not_current() {
        let (k1, k2) = (generate_key(), generate_key());
        let old = seal_v1(&k1, "legacy-token");
        assert_eq!(SealFormat::of(&old), SealFormat::V1);
        let sealed = Sealed {
            key_id: "k1".into(),
            data: old,
        };
        let c = TokenCipher::new("k1", [("k1", k1.as_str())]).expect("key");
        assert_eq!(c.open(&sealed, ALICE_ACCESS).expect("open"), "legacy-token");
        // Bound to nothing: any place opens it.
        let bob = Binding::Account {
            provider: "corp",
            uid: "bob",
            column: TokenColumn::RefreshToken,
        };
        assert_eq!(c.open(&sealed, bob).expect("open"), "legacy-token");
        // Under the current key, in the old format: due for a move.
        assert!(!c.is_current("k1", &sealed.data));
        let moved = c.reseal(&sealed, ALICE_ACCESS).expect("reseal");
        assert!(c.is_current(&moved.key_id, &moved.data));
        assert!(c.open(&moved, bob).is_err());
        // After a rotation too.
        let rotated =
            TokenCipher::new("k2", [("k2", k2.as_str()), ("k1", k1.as_str())]).expect("keys");
        assert_eq!(
            rotated.open(&sealed, ALICE_ACCESS).expect("open"),
            "legacy-token"
        );
        let moved = rotated.reseal(&sealed, ALICE_ACCESS).expect("reseal");
        assert_eq!(moved.key_id, "k2");
        assert_eq!(
            rotated.open(&moved, ALICE_ACCESS).expect("open"),
            "legacy-token"
        );
    }

    #[test]
    fn tampering_is_detected() {
        let key = generate_key();
        let c = TokenCipher::new("k1", [("k1", key.as_str())]).expect("key");
        for mut sealed in [
            c.seal("secret", ALICE_ACCESS),
            Sealed {
                key_id: "k1".into(),
                data: seal_v1(&key, "secret"),
            },
        ] {
            let v2 = sealed.data.starts_with(V2_PREFIX);
            let text = sealed.data.trim_start_matches(V2_PREFIX);
            let mut raw = STANDARD.decode(text).expect("b64");
            let last = raw.len() - 1;
            raw[last] ^= 1;
            let prefix = if v2 { V2_PREFIX } else { "" };
            sealed.data = format!("{prefix}{}", STANDARD.encode(&raw));
            assert!(c.open(&sealed, ALICE_ACCESS).is_err());
            // Nor does a v2 value pass as v1, or the reverse.
            raw[last] ^= 1;
            let other = if v2 { "" } else { V2_PREFIX };
            sealed.data = format!("{other}{}", STANDARD.encode(&raw));
            assert!(c.open(&sealed, ALICE_ACCESS).is_err());
        }
    }

    #[test]
    fn bindings_encode_each_field_with_its_length() {
        let aad = ALICE_ACCESS.associated_data();
        assert!(aad.starts_with(AAD_LABEL));
        let mut expected = AAD_LABEL.to_vec();
        for field in ["social_accounts", "corp", "alice", "access_token_enc"] {
            expected.extend_from_slice(&(field.len() as u64).to_be_bytes());
            expected.extend_from_slice(field.as_bytes());
        }
        assert_eq!(aad, expected);
    }

    #[test]
    fn job_secrets_are_per_job_per_purpose_and_per_key() {
        let key = generate_key();
        let c = TokenCipher::new("k1", [("k1", key.as_str())]).expect("key");
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let s = c.job_secrets();
        assert_eq!(s.app_token(a).token, s.app_token(a).token);
        assert_eq!(
            s.app_token(a).hash,
            hash_token(s.app_token(a).token.expose())
        );
        assert_ne!(s.app_token(a).token, s.app_token(b).token);
        assert_ne!(s.app_token(a).token, s.partial_token(a).token);
        assert_eq!(s.app_token(a).token.expose().len(), 43);
        let other = TokenCipher::new("k1", [("k1", generate_key().as_str())]).expect("key");
        assert_ne!(s.app_token(a).token, other.job_secrets().app_token(a).token);
        assert!(!format!("{s:?}").contains(&key));
    }

    #[test]
    fn secrets_made_before_a_rotation_are_made_again_with_their_key() {
        let (old, new) = (generate_key(), generate_key());
        let before = TokenCipher::new("k1", [("k1", old.as_str())]).expect("key");
        let after =
            TokenCipher::new("k2", [("k1", old.as_str()), ("k2", new.as_str())]).expect("keys");
        let (b, a) = (before.job_secrets(), after.job_secrets());
        let job = uuid::Uuid::new_v4();

        // Issued with the current key; every known key's, current first.
        let tokens = a.app_tokens(job);
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].hash, a.app_token(job).hash);
        assert_eq!(tokens[1].hash, b.app_token(job).hash);
        assert_ne!(a.app_token(job).hash, b.app_token(job).hash);
        let partials = a.partial_tokens(job);
        assert_eq!(partials[1].hash, b.partial_token(job).hash);

        // A login state names its key: its verifier and nonce are the same
        // after the rotation, and unknown where the key is not configured.
        let state = b.new_state();
        assert!(state.ends_with(".k1"), "{state}");
        let expose = |s: Option<crate::secret::Secret>| s.map(|s| s.expose().to_owned());
        assert_eq!(
            expose(a.pkce_verifier(&state)),
            expose(b.pkce_verifier(&state))
        );
        assert_eq!(expose(a.nonce(&state)), expose(b.nonce(&state)));
        assert!(a.pkce_verifier(&state).is_some());
        let gone = TokenCipher::new("k3", [("k3", generate_key().as_str())]).expect("key");
        assert!(gone.job_secrets().pkce_verifier(&state).is_none());
        assert!(gone.job_secrets().nonce(&state).is_none());
        // A state that names no key (made before states named theirs): the
        // current key.
        let bare = random_token(32);
        assert_eq!(expose(b.pkce_verifier(&bare)).map(|v| v.len()), Some(43));
        assert_eq!(
            expose(a.pkce_verifier(&a.new_state())).map(|v| v.len()),
            Some(43)
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(TokenCipher::new("k1", [("k1", "c2hvcnQ=")]).is_err());
        let key = generate_key();
        assert!(TokenCipher::new("k9", [("k1", key.as_str())]).is_err());
    }
}
