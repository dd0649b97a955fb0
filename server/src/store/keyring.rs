//! The key hierarchy: key slots, the root key and the keyring, and the three operations on
//! it — init, unseal and rotate. Record encryption on top of it is [`super::sealed`].
//!
//! Each *key slot* (a random unseal key, or an Argon2id-derived passphrase key) holds the
//! *root key* encrypted under the slot's key; the root key encrypts the *keyring* (every
//! data-key version plus the HMAC key for token lookups); data keys encrypt records.
//!
//! Words: *seal* means what it means in Vault — drop the keys from memory — and *unseal*
//! means load them back through a slot. The AEAD operations are *encrypt* and *decrypt*.
//!
//! Everything here lives in [`Tree::Sys`], outside the record encryption (it is what that
//! encryption needs to start): the init marker, the slots and the encrypted keyring.

use super::{Backend, Guard, StoreError, Tree, Write};
use crate::crypto::{self, CryptoError, KdfParams, SecretKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

const INIT_KEY: &[u8] = b"init";
const KEYRING_KEY: &[u8] = b"keyring";
const KEYRING_AAD: &[u8] = b"vaultd/v1/keyring";
const SLOT_UNSEAL: &[u8] = b"slot/unseal";
const SLOT_PASSPHRASE: &[u8] = b"slot/passphrase";
/// Written (and never removed) by the init of versions before the atomic one.
const STALE_INIT_LOCK_KEY: &[u8] = b"init-lock";

/// The unsealed key material. Dropping it (on seal) zeroizes every key. No `Clone`, and
/// `Debug` shows only the current version.
pub struct Keyring {
    root: SecretKey,
    data_keys: BTreeMap<u32, SecretKey>,
    current: u32,
    hmac_key: SecretKey,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// The keyring as stored (JSON, then encrypted under the root key).
#[derive(Serialize, Deserialize)]
struct KeyringFile {
    current: u32,
    data_keys: BTreeMap<u32, String>,
    hmac_key: String,
}

fn corrupt_keyring() -> StoreError {
    StoreError::Corrupt {
        tree: Tree::Sys.name(),
        key: "keyring".into(),
    }
}

impl Keyring {
    /// A new root key, first data key (version 1) and HMAC key.
    fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            root: SecretKey::generate()?,
            data_keys: BTreeMap::from([(1, SecretKey::generate()?)]),
            current: 1,
            hmac_key: SecretKey::generate()?,
        })
    }

    /// The same keys plus a new data-key version, which becomes current.
    fn rotated(&self) -> Result<Self, CryptoError> {
        let next = self.current + 1;
        let mut data_keys: BTreeMap<u32, SecretKey> = self
            .data_keys
            .iter()
            .map(|(v, k)| (*v, k.duplicate()))
            .collect();
        data_keys.insert(next, SecretKey::generate()?);
        Ok(Self {
            root: self.root.duplicate(),
            data_keys,
            current: next,
            hmac_key: self.hmac_key.duplicate(),
        })
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let file = KeyringFile {
            current: self.current,
            data_keys: self
                .data_keys
                .iter()
                .map(|(v, k)| (*v, B64.encode(k.expose())))
                .collect(),
            hmac_key: B64.encode(self.hmac_key.expose()),
        };
        let bytes = Zeroizing::new(
            serde_json::to_vec(&file)
                .expect("a KeyringFile (integers and strings) always serialises to JSON"),
        );
        for key in file.data_keys.into_values().chain([file.hmac_key]) {
            crypto::wipe(key);
        }
        bytes
    }

    fn decode(root: SecretKey, bytes: &[u8]) -> Result<Self, StoreError> {
        let file: KeyringFile = serde_json::from_slice(bytes).map_err(|_| corrupt_keyring())?;
        let decode_key = |s: &str| {
            let raw = Zeroizing::new(B64.decode(s).map_err(|_| corrupt_keyring())?);
            SecretKey::from_slice(&raw).ok_or_else(corrupt_keyring)
        };
        let decoded = (|| {
            let mut data_keys = BTreeMap::new();
            for (version, key) in &file.data_keys {
                data_keys.insert(*version, decode_key(key)?);
            }
            Ok::<_, StoreError>((data_keys, decode_key(&file.hmac_key)?))
        })();
        let current = file.current;
        for key in file.data_keys.into_values().chain([file.hmac_key]) {
            crypto::wipe(key);
        }
        let (data_keys, hmac_key) = decoded?;
        if !data_keys.contains_key(&current) {
            return Err(corrupt_keyring());
        }
        Ok(Self {
            root,
            data_keys,
            current,
            hmac_key,
        })
    }

    /// The keyring encrypted under its root key, as stored.
    fn encrypt_under_root(&self) -> Result<Vec<u8>, CryptoError> {
        self.root.encrypt(&self.encode(), KEYRING_AAD)
    }

    pub fn hmac(&self, data: &[u8]) -> [u8; 32] {
        self.hmac_key.hmac(data)
    }

    /// The data-key version new records are encrypted under.
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// The data key of `version`, if this keyring has it.
    pub(super) fn data_key(&self, version: u32) -> Option<&SecretKey> {
        self.data_keys.get(&version)
    }
}

/// A key slot as stored: the root key encrypted under the slot's key.
#[derive(Serialize, Deserialize)]
struct SlotFile {
    kind: String,
    /// Root key encrypted under the slot's key-encryption key, base64.
    wrapped_root: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kdf: Option<KdfParams>,
}

/// The init marker. Its presence is what "initialised" means.
#[derive(Serialize, Deserialize)]
struct InitFile {
    format: u32,
    created_unix: u64,
    passphrase_slot: bool,
}

/// How an operator proves they may unseal.
pub enum UnsealCredential {
    Key(SecretKey),
    Passphrase(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for UnsealCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsealCredential([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    /// There is no init marker.
    #[error("Vault is not initialized")]
    NotInitialized,
    /// A passphrase was given but init created no passphrase slot.
    #[error("no passphrase slot was configured at init")]
    NoPassphraseSlot,
    /// The key or passphrase does not decrypt its slot.
    #[error("unseal key or passphrase is incorrect")]
    WrongKey,
    /// Reading the slots or the keyring failed, or they are corrupt.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What init hands back exactly once.
pub struct InitOutput {
    pub unseal_key: SecretKey,
}

impl std::fmt::Debug for InitOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitOutput([REDACTED])")
    }
}

fn slot_aad(slot: &[u8]) -> Vec<u8> {
    [b"vaultd/v1/slot/".as_slice(), slot].concat()
}

fn corrupt_slot(slot: &[u8]) -> StoreError {
    StoreError::Corrupt {
        tree: Tree::Sys.name(),
        key: String::from_utf8_lossy(slot).into_owned(),
    }
}

/// A slot record: `root` encrypted under `kek`, with the KDF salt and parameters when the
/// key-encryption key comes from a passphrase.
fn slot_record(
    root: &SecretKey,
    kek: &SecretKey,
    slot: &[u8],
    kdf: Option<(&[u8], KdfParams)>,
) -> Result<Vec<u8>, CryptoError> {
    let wrapped = kek.encrypt(root.expose(), &slot_aad(slot))?;
    let file = SlotFile {
        kind: if kdf.is_some() {
            "passphrase"
        } else {
            "random"
        }
        .into(),
        wrapped_root: B64.encode(wrapped),
        salt: kdf.map(|(salt, _)| B64.encode(salt)),
        kdf: kdf.map(|(_, params)| params),
    };
    Ok(serde_json::to_vec(&file)
        .expect("a SlotFile (strings and integers) always serialises to JSON"))
}

async fn read_slot(backend: &dyn Backend, slot: &[u8]) -> Result<Option<SlotFile>, StoreError> {
    match backend.get(Tree::Sys, slot).await? {
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| corrupt_slot(slot)),
        None => Ok(None),
    }
}

pub async fn is_initialized(backend: &dyn Backend) -> Result<bool, StoreError> {
    Ok(backend.get(Tree::Sys, INIT_KEY).await?.is_some())
}

/// Creates the root key, the first data key and the key slots, and writes them together with
/// `seed` (records to create under the new keys, such as the root token) and the init marker
/// in one atomic step. Returns `None` if already initialised. Leaves the store sealed, as
/// Vault does.
///
/// Of concurrent calls exactly one lands; a call that fails leaves nothing behind, so init
/// can be retried. (If the final sync fails the batch is taken back. Should the process die
/// in that window, the batch may survive on disk with the unseal key lost — as with any
/// init whose response never arrives.)
pub async fn initialize(
    backend: &dyn Backend,
    passphrase: Option<(&[u8], KdfParams)>,
    seed: impl FnOnce(&Keyring) -> Result<Vec<Write>, StoreError>,
) -> Result<Option<InitOutput>, StoreError> {
    if is_initialized(backend).await? {
        return Ok(None);
    }
    let keyring = Keyring::generate()?;
    let unseal_key = SecretKey::generate()?;
    let mut writes = vec![
        Write {
            tree: Tree::Sys,
            key: SLOT_UNSEAL.to_vec(),
            value: Some(slot_record(&keyring.root, &unseal_key, SLOT_UNSEAL, None)?),
        },
        Write {
            tree: Tree::Sys,
            key: KEYRING_KEY.to_vec(),
            value: Some(keyring.encrypt_under_root()?),
        },
    ];
    if let Some((passphrase, params)) = passphrase {
        let salt = crypto::random_bytes::<16>()?;
        let kek = crypto::derive_from_passphrase(passphrase, &salt, params)?;
        writes.push(Write {
            tree: Tree::Sys,
            key: SLOT_PASSPHRASE.to_vec(),
            value: Some(slot_record(
                &keyring.root,
                &kek,
                SLOT_PASSPHRASE,
                Some((&salt, params)),
            )?),
        });
    }
    writes.extend(seed(&keyring)?);
    let marker = InitFile {
        format: 1,
        created_unix: crate::clock::unix_now(),
        passphrase_slot: passphrase.is_some(),
    };
    // Older versions took a separate `init-lock` record before writing the batch; one left
    // behind by a failed init must not block this one.
    writes.push(Write {
        tree: Tree::Sys,
        key: STALE_INIT_LOCK_KEY.to_vec(),
        value: None,
    });
    writes.push(Write {
        tree: Tree::Sys,
        key: INIT_KEY.to_vec(),
        value: Some(
            serde_json::to_vec(&marker)
                .expect("an InitFile (integers and a bool) always serialises to JSON"),
        ),
    });
    let written: Vec<(Tree, Vec<u8>)> = writes
        .iter()
        .filter(|w| w.value.is_some())
        .map(|w| (w.tree, w.key.clone()))
        .collect();
    // One atomic step guarded by the init marker itself: of concurrent inits exactly one
    // lands, and a failed one leaves nothing behind.
    if !backend
        .apply_if_absent((Tree::Sys, INIT_KEY), writes)
        .await?
    {
        return Ok(None);
    }
    if let Err(e) = backend.sync().await {
        // Nobody will see this unseal key: take the init back so it can be retried rather
        // than leave a store no one can unseal.
        let undo = written
            .into_iter()
            .map(|(tree, key)| Write {
                tree,
                key,
                value: None,
            })
            .collect();
        if let Err(undo_error) = backend.apply(undo).await {
            tracing::error!(error = %undo_error, "could not take back a failed init");
        }
        return Err(e);
    }
    Ok(Some(InitOutput { unseal_key }))
}

/// Decrypts the root key through the slot `credential` opens, then the keyring. Blocking: a
/// passphrase runs Argon2id.
pub async fn unseal(
    backend: &dyn Backend,
    credential: UnsealCredential,
) -> Result<Keyring, UnsealError> {
    if !is_initialized(backend).await? {
        return Err(UnsealError::NotInitialized);
    }
    let (slot_key, kek) = match credential {
        UnsealCredential::Key(key) => (SLOT_UNSEAL, key),
        UnsealCredential::Passphrase(passphrase) => {
            let slot = read_slot(backend, SLOT_PASSPHRASE)
                .await?
                .ok_or(UnsealError::NoPassphraseSlot)?;
            let salt = slot
                .salt
                .as_deref()
                .and_then(|s| B64.decode(s).ok())
                .ok_or_else(|| corrupt_slot(SLOT_PASSPHRASE))?;
            let params = slot.kdf.ok_or_else(|| corrupt_slot(SLOT_PASSPHRASE))?;
            let kek = crypto::derive_from_passphrase(&passphrase, &salt, params)
                .map_err(StoreError::from)?;
            (SLOT_PASSPHRASE, kek)
        }
    };
    let slot = read_slot(backend, slot_key)
        .await?
        .ok_or_else(|| corrupt_slot(slot_key))?;
    let wrapped = B64
        .decode(&slot.wrapped_root)
        .map_err(|_| corrupt_slot(slot_key))?;
    let root_bytes = kek
        .decrypt(&wrapped, &slot_aad(slot_key))
        .map_err(|_| UnsealError::WrongKey)?;
    let root = SecretKey::from_slice(&root_bytes).ok_or_else(|| corrupt_slot(slot_key))?;
    let encrypted_keyring = backend
        .get(Tree::Sys, KEYRING_KEY)
        .await?
        .ok_or_else(corrupt_keyring)?;
    let keyring_bytes = root
        .decrypt(&encrypted_keyring, KEYRING_AAD)
        .map_err(|_| corrupt_keyring())?;
    Ok(Keyring::decode(root, &keyring_bytes)?)
}

/// The keyring as stored now, opened with `current`'s root key, and the stored bytes.
async fn read_stored(
    backend: &dyn Backend,
    current: &Keyring,
) -> Result<(Keyring, Vec<u8>), StoreError> {
    let stored = backend
        .get(Tree::Sys, KEYRING_KEY)
        .await?
        .ok_or_else(corrupt_keyring)?;
    let bytes = current
        .root
        .decrypt(&stored, KEYRING_AAD)
        .map_err(|_| corrupt_keyring())?;
    Ok((Keyring::decode(current.root.duplicate(), &bytes)?, stored))
}

/// The keyring as stored now: after another replica rotated, it has data-key versions that
/// `current` lacks.
pub async fn reload(backend: &dyn Backend, current: &Keyring) -> Result<Keyring, StoreError> {
    Ok(read_stored(backend, current).await?.0)
}

/// Stores the stored keyring plus a new data-key version (durably) and returns it; records
/// written before stay readable under their old versions. Rotates what is stored, guarded by
/// it, never the copy in memory: two replicas rotating at once get two new versions, and no
/// replica's key is overwritten by another's.
pub async fn rotate(backend: &dyn Backend, current: &Keyring) -> Result<Keyring, StoreError> {
    loop {
        let (stored, bytes) = read_stored(backend, current).await?;
        let rotated = stored.rotated()?;
        let guard = Guard {
            tree: Tree::Sys,
            key: KEYRING_KEY.to_vec(),
            expected: Some(bytes),
        };
        let write = Write {
            tree: Tree::Sys,
            key: KEYRING_KEY.to_vec(),
            value: Some(rotated.encrypt_under_root()?),
        };
        if backend.apply_if(vec![guard], vec![write]).await? {
            backend.sync().await?;
            return Ok(rotated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    /// Cheap Argon2id parameters: the slot logic is under test, not the KDF's cost.
    const TEST_KDF: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    async fn init(backend: &MemoryBackend, passphrase: Option<&[u8]>) -> InitOutput {
        initialize(backend, passphrase.map(|p| (p, TEST_KDF)), |_| Ok(vec![]))
            .await
            .expect("init")
            .expect("init lands")
    }

    #[tokio::test]
    async fn keyring_round_trips_through_its_encoding() {
        let keyring = Keyring::generate()
            .expect("keyring")
            .rotated()
            .expect("rotate");
        let decoded = Keyring::decode(keyring.root.duplicate(), &keyring.encode()).expect("decode");
        assert_eq!(decoded.current_version(), 2);
        assert_eq!(decoded.hmac(b"token"), keyring.hmac(b"token"));
        for version in [1, 2] {
            let ciphertext = keyring
                .data_key(version)
                .expect("key")
                .encrypt(b"x", b"aad")
                .expect("encrypt");
            let decrypted = decoded
                .data_key(version)
                .expect("key")
                .decrypt(&ciphertext, b"aad")
                .expect("decrypt");
            assert_eq!(&decrypted[..], b"x");
        }
    }

    #[tokio::test]
    async fn keyring_without_its_current_version_is_refused() {
        let keyring = Keyring::generate().expect("keyring");
        let file = KeyringFile {
            current: 2,
            data_keys: BTreeMap::from([(1, B64.encode(keyring.data_key(1).expect("v1").expose()))]),
            hmac_key: B64.encode(keyring.hmac_key.expose()),
        };
        let bytes = serde_json::to_vec(&file).expect("json");
        assert!(matches!(
            Keyring::decode(keyring.root.duplicate(), &bytes),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn junk_keyrings_are_refused() {
        let root = || SecretKey::generate().expect("key");
        for junk in [
            &b""[..],
            b"{}",
            br#"{"current":1,"data_keys":{"1":"not base64!"},"hmac_key":""}"#,
            br#"{"current":1,"data_keys":{"1":"c2hvcnQ="},"hmac_key":"c2hvcnQ="}"#,
        ] {
            assert!(matches!(
                Keyring::decode(root(), junk),
                Err(StoreError::Corrupt { .. })
            ));
        }
    }

    #[tokio::test]
    async fn debug_output_holds_no_key_material() {
        let keyring = Keyring::generate().expect("keyring");
        assert_eq!(format!("{keyring:?}"), "Keyring { current: 1, .. }");
        let credential = UnsealCredential::Passphrase(Zeroizing::new(b"hunter2hunter2".to_vec()));
        assert_eq!(format!("{credential:?}"), "UnsealCredential([REDACTED])");
        let output = InitOutput {
            unseal_key: SecretKey::generate().expect("key"),
        };
        assert_eq!(format!("{output:?}"), "InitOutput([REDACTED])");
    }

    #[tokio::test]
    async fn unseal_key_and_passphrase_both_open_the_same_keyring() {
        let backend = MemoryBackend::new();
        let output = init(&backend, Some(b"a long operator passphrase")).await;
        let by_key = unseal(&backend, UnsealCredential::Key(output.unseal_key))
            .await
            .expect("key");
        let by_passphrase = unseal(
            &backend,
            UnsealCredential::Passphrase(Zeroizing::new(b"a long operator passphrase".to_vec())),
        )
        .await
        .expect("passphrase");
        assert_eq!(by_key.hmac(b"t"), by_passphrase.hmac(b"t"));
    }

    #[tokio::test]
    async fn wrong_key_or_passphrase_is_refused() {
        let backend = MemoryBackend::new();
        init(&backend, Some(b"a long operator passphrase")).await;
        let wrong_key = UnsealCredential::Key(SecretKey::generate().expect("key"));
        assert!(matches!(
            unseal(&backend, wrong_key).await,
            Err(UnsealError::WrongKey)
        ));
        let wrong_passphrase =
            UnsealCredential::Passphrase(Zeroizing::new(b"a wrong operator passphrase".to_vec()));
        assert!(matches!(
            unseal(&backend, wrong_passphrase).await,
            Err(UnsealError::WrongKey)
        ));
    }

    #[tokio::test]
    async fn passphrase_without_a_slot_and_unseal_before_init_are_refused() {
        let backend = MemoryBackend::new();
        let passphrase = || UnsealCredential::Passphrase(Zeroizing::new(b"anything".to_vec()));
        assert!(matches!(
            unseal(&backend, passphrase()).await,
            Err(UnsealError::NotInitialized)
        ));
        init(&backend, None).await;
        assert!(matches!(
            unseal(&backend, passphrase()).await,
            Err(UnsealError::NoPassphraseSlot)
        ));
    }

    #[tokio::test]
    async fn slot_moved_to_the_other_slot_does_not_open() {
        let backend = MemoryBackend::new();
        let output = init(&backend, Some(b"a long operator passphrase")).await;
        // The unseal slot's ciphertext under the passphrase slot's name: the AAD names the
        // slot, so even the right key cannot open it there.
        let unseal_slot = backend
            .get(Tree::Sys, SLOT_UNSEAL)
            .await
            .expect("get")
            .expect("slot");
        backend.put_raw(Tree::Sys, SLOT_PASSPHRASE, unseal_slot.clone());
        let file: SlotFile = serde_json::from_slice(&unseal_slot).expect("slot json");
        let wrapped = B64.decode(&file.wrapped_root).expect("b64");
        assert!(
            output
                .unseal_key
                .decrypt(&wrapped, &slot_aad(SLOT_PASSPHRASE))
                .is_err()
        );
        assert!(matches!(
            unseal(
                &backend,
                UnsealCredential::Passphrase(Zeroizing::new(
                    b"a long operator passphrase".to_vec()
                ))
            )
            .await,
            Err(UnsealError::Store(StoreError::Corrupt { .. }))
        ));
    }

    #[tokio::test]
    async fn rotation_is_stored_and_survives_unseal() {
        let backend = MemoryBackend::new();
        let output = init(&backend, None).await;
        let key = output.unseal_key.duplicate();
        let first = unseal(&backend, UnsealCredential::Key(output.unseal_key))
            .await
            .expect("unseal");
        let rotated = rotate(&backend, &first).await.expect("rotate");
        assert_eq!(rotated.current_version(), 2);
        assert!(rotated.data_key(1).is_some());
        let again = unseal(&backend, UnsealCredential::Key(key))
            .await
            .expect("unseal");
        assert_eq!(again.current_version(), 2);
    }
}
