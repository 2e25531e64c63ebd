//! Secrets on the command line. QEMU gets every secret value (storage passwords, LUKS
//! passphrases, TLS key passwords, HTTP cookies) as a `secret` object whose data is encrypted
//! with the per-domain master key (`masterKey0`, read by QEMU from `master-key.aes`) in
//! AES-256-CBC with PKCS#7 padding and a fresh IV, both base64, so the value never appears in
//! the argv in clear.

use std::collections::BTreeMap;

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::Xml2ArgvError;
use super::opts::JsonOpts;
use crate::domain::common::Secret;

/// The master key, the IV and the secret values a launch may hand to QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretContext {
    /// The content of the domain's `master-key.aes`.
    pub master_key: [u8; 32],
    /// The IV used for this launch's secrets (see `iv_per_object`).
    pub iv: [u8; 16],
    /// Whether each secret object gets an IV of its own, derived from `iv` and its id under
    /// the master key, as libvirt draws a fresh IV per secret. libvirt's test harness mocks
    /// its random source so that every secret gets the same bytes, `iv` itself.
    pub iv_per_object: bool,
    /// Secret values, keyed by UUID or by usage string.
    pub values: BTreeMap<String, Vec<u8>>,
    /// Secrets defined without a value, keyed like `values`, with their UUID: naming one is
    /// an error of its own.
    pub unset: BTreeMap<String, String>,
    /// The value of any secret not in `values` (libvirt's test harness answers every lookup
    /// with one fixed value).
    pub fallback: Option<Vec<u8>>,
}

impl SecretContext {
    /// libvirt's `qemuxml2argvtest`: random bytes are 0, 1, 2, ... (so key 00..1f and IV
    /// 00..0f) and the mocked secret driver returns one value for every secret
    /// (CONFORMANCE §2.5).
    pub fn libvirt_test_harness() -> Self {
        SecretContext {
            master_key: std::array::from_fn(|i| i as u8),
            iv: std::array::from_fn(|i| i as u8),
            iv_per_object: false,
            values: BTreeMap::new(),
            unset: BTreeMap::new(),
            fallback: Some(b"AQCVn5hO6HzFAhAAq0NCv8jtJcIcE+HOBlMQ1A".to_vec()),
        }
    }

    /// The value of `secret`, looked up by UUID, else by usage.
    pub fn value(&self, secret: &Secret) -> Result<&[u8], Xml2ArgvError> {
        let by = |k: &Option<String>| k.as_ref().and_then(|k| self.values.get(k));
        let by_unset = |k: &Option<String>| k.as_ref().and_then(|k| self.unset.get(k));
        if let Some(v) = by(&secret.uuid).or_else(|| by(&secret.usage)) {
            return Ok(v);
        }
        if let Some(u) = by_unset(&secret.uuid).or_else(|| by_unset(&secret.usage)) {
            return Err(Xml2ArgvError::Other(format!(
                "Secret not found: secret '{u}' does not have a value"
            )));
        }
        if let Some(v) = &self.fallback {
            return Ok(v);
        }
        Err(Xml2ArgvError::Other(match (&secret.uuid, &secret.usage) {
            (Some(u), _) => format!("Secret not found: no secret with matching uuid '{u}'"),
            (None, Some(u)) => format!("Secret not found: no secret with matching usage '{u}'"),
            (None, None) => "Secret not found: secret has neither uuid nor usage".to_string(),
        }))
    }

    /// `plain` encrypted for QEMU with `iv`: (ciphertext, IV), both base64.
    pub fn encrypt(&self, plain: &[u8]) -> (String, String) {
        self.encrypt_with(plain, self.iv)
    }

    fn encrypt_with(&self, plain: &[u8], iv: [u8; 16]) -> (String, String) {
        let buf = self.cbc(plain, iv);
        (B64.encode(&buf), B64.encode(iv))
    }

    /// AES-256-CBC with PKCS#7 padding under the master key.
    fn cbc(&self, plain: &[u8], iv: [u8; 16]) -> Vec<u8> {
        let enc = cbc::Encryptor::<aes::Aes256>::new(&self.master_key.into(), &iv.into());
        // PKCS#7 always adds 1..=16 bytes.
        let mut buf = vec![0u8; plain.len() + 16];
        let n = enc
            .encrypt_padded_b2b_mut::<Pkcs7>(plain, &mut buf)
            .map(|c| c.len())
            .unwrap_or(0);
        buf.truncate(n);
        buf
    }

    /// The IV of secret object `id`: the last block of `id` encrypted under the master key
    /// from `iv`, so distinct objects of one launch get distinct IVs that nobody without the
    /// key can predict, and the launch's random `iv` stays the only randomness needed.
    fn iv_for(&self, id: &str) -> [u8; 16] {
        if !self.iv_per_object {
            return self.iv;
        }
        let c = self.cbc(id.as_bytes(), self.iv);
        let mut out = [0u8; 16];
        out.copy_from_slice(&c[c.len() - 16..]);
        out
    }

    /// The `-object secret` carrying `plain` under `id`.
    pub fn object(&self, id: &str, plain: &[u8]) -> JsonOpts {
        let (data, iv) = self.encrypt_with(plain, self.iv_for(id));
        let mut j = JsonOpts::new();
        j.s("qom-type", "secret")
            .s("id", id)
            .s("data", data)
            .s("keyid", "masterKey0")
            .s("iv", iv)
            .s("format", "base64");
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_secret_encrypts_like_libvirt() {
        let c = SecretContext::libvirt_test_harness();
        let (data, iv) = c.encrypt(c.fallback.as_deref().unwrap());
        assert_eq!(
            data,
            "9eao5F8qtkGt+seB1HYivWIxbtwUu6MQtg1zpj/oDtUsPr1q8wBYM91uEHCn6j/1"
        );
        assert_eq!(iv, "AAECAwQFBgcICQoLDA0ODw==");
    }

    #[test]
    fn block_aligned_input_gets_a_full_padding_block() {
        let c = SecretContext::libvirt_test_harness();
        let (data, _) = c.encrypt(&[7u8; 16]);
        assert_eq!(B64.decode(data).unwrap().len(), 32);
        let (empty, _) = c.encrypt(b"");
        assert_eq!(B64.decode(empty).unwrap().len(), 16);
    }

    #[test]
    fn per_object_ivs_differ_and_decrypt() {
        use aes::cipher::BlockDecryptMut;
        let mut c = SecretContext::libvirt_test_harness();
        c.iv_per_object = true;
        let a = c.iv_for("libvirt-1-format-encryption-secret0");
        let b = c.iv_for("libvirt-2-format-encryption-secret0");
        assert_ne!(a, b);
        assert_ne!(a, c.iv);
        let (data, iv) = c.encrypt_with(b"hunter2", a);
        assert_eq!(iv, B64.encode(a));
        let mut buf = B64.decode(data).unwrap();
        let dec = cbc::Decryptor::<aes::Aes256>::new(&c.master_key.into(), &a.into());
        let plain = dec.decrypt_padded_mut::<Pkcs7>(&mut buf).unwrap();
        assert_eq!(plain, b"hunter2");
    }

    #[test]
    fn missing_secret_is_named() {
        let mut c = SecretContext::libvirt_test_harness();
        c.fallback = None;
        let s = Secret {
            uuid: Some("0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f".into()),
            ..Default::default()
        };
        let e = c.value(&s).unwrap_err().to_string();
        assert!(e.contains("0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f"), "{e}");
        c.values.insert(
            "0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f".into(),
            b"pw".to_vec(),
        );
        assert_eq!(c.value(&s).unwrap(), b"pw");
    }
}
