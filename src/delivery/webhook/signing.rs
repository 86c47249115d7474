//! Standard Webhooks v1 signing: `webhook-signature: v1,<base64 HMAC-SHA256
//! of "{webhook-id}.{webhook-timestamp}.{body}">`, keyed by the bytes behind
//! the `whsec_` secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::WebhookSecret;
use crate::redact::Redactor;

#[derive(Clone)]
pub struct WebhookSigner {
    secret: WebhookSecret,
}

impl WebhookSigner {
    pub fn new(secret: WebhookSecret) -> Self {
        Self { secret }
    }

    /// Cuts the secret, in the forms it is written, out of text.
    pub fn redactor(&self) -> Redactor {
        let encoded = STANDARD.encode(self.secret.expose());
        Redactor::of(&encoded).with(&format!("whsec_{encoded}"))
    }

    /// The `webhook-signature` header value.
    pub fn signature(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        sign(self.secret.expose(), id, timestamp, body)
    }
}

pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's published test vector.
    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
