//! How relinkd's outbound connections reach the world: the extra CA
//! certificates it trusts (`[daemon] ca_file`) and the proxies the
//! environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).
//!
//! Both come from the config's load (the proxies through its
//! `Environment`, like every variable a config reads), so `check-config`
//! refuses what reqwest would silently ignore, a reload sees a changed file,
//! and a test's daemon sees only the environment the test gives it. The
//! variables mean what reqwest's own reading of them means (the same names,
//! upper case first, the same precedence; `NO_PROXY` is parsed by reqwest).

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret as _, SecretString};
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::{PemObject as _, SectionKind};

/// Every variable [`Proxies::from_env`] reads.
pub const PROXY_VARIABLES: [&str; 9] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

/// What every outbound client is built with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    /// `[daemon] ca_file`: CA certificates trusted besides the built-in
    /// roots.
    pub ca_file: Option<CaFile>,
    pub proxies: Proxies,
}

impl Egress {
    /// What outbound connections trust and go through besides the
    /// defaults, a line each (a proxy's credentials are never shown);
    /// logged at start, printed by `check-config`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(ca_file) = &self.ca_file {
            lines.push(format!(
                "outbound connections also trust {} ({} certificates)",
                ca_file.path.display(),
                ca_file.certificates.len()
            ));
        }
        let proxies = &self.proxies;
        if proxies.any() {
            let shown = |url: &Option<ProxyUrl>| {
                url.as_ref()
                    .map_or_else(|| "none".to_owned(), ToString::to_string)
            };
            lines.push(format!(
                "outbound connections go through the environment's proxies: \
                 https {}, http {}, all {}, no_proxy {:?}",
                shown(&proxies.https),
                shown(&proxies.http),
                shown(&proxies.all),
                proxies.no_proxy.as_deref().unwrap_or("")
            ));
        }
        lines
    }

    pub fn log(&self) {
        for line in self.describe() {
            tracing::info!("{line}");
        }
    }
}

/// A CA file as it was read: its path and its certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    pub path: PathBuf,
    /// Each certificate's DER, in file order; never empty.
    pub certificates: Vec<Vec<u8>>,
}

/// What a CA file's text holds.
#[derive(Debug)]
pub struct CaCertificates {
    /// DER, in file order; never empty.
    pub certificates: Vec<Vec<u8>>,
    /// It also holds a private key (which a CA file never needs).
    pub has_private_key: bool,
}

/// Why a CA file's text is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaProblem {
    /// No `-----BEGIN ...-----` block at all (DER, or another file).
    NotPem,
    /// A block that does not decode.
    BadPem(String),
    /// PEM, but no `CERTIFICATE` block.
    NoCertificate,
    /// The `index`-th certificate (from 1) is not a usable X.509 certificate.
    BadCertificate { index: usize, why: String },
}

impl fmt::Display for CaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaProblem::NotPem => f.write_str(
                "is not PEM (no -----BEGIN CERTIFICATE----- block); a DER file converts with \
                 `openssl x509 -inform der -in FILE -out FILE.pem`",
            ),
            CaProblem::BadPem(why) => write!(f, "is not valid PEM: {why}"),
            CaProblem::NoCertificate => f.write_str(
                "holds no certificate (no -----BEGIN CERTIFICATE----- block); \
                 ca_file takes CA certificates in PEM",
            ),
            CaProblem::BadCertificate { index, why } => {
                write!(
                    f,
                    "certificate {index} is not a valid X.509 certificate: {why}"
                )
            }
        }
    }
}

/// The certificates in a PEM file's text, each checked the way the clients
/// will take it as a root.
pub fn ca_certificates(pem: &[u8]) -> Result<CaCertificates, CaProblem> {
    let mut sections = 0;
    let mut has_private_key = false;
    let mut certificates = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        // The error names a block's marker line or a base64 problem, never
        // the block's contents.
        let (kind, der) = section.map_err(|e| CaProblem::BadPem(e.to_string()))?;
        sections += 1;
        match kind {
            SectionKind::Certificate => certificates.push(der),
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                has_private_key = true;
            }
            _ => {}
        }
    }
    if sections == 0 {
        return Err(CaProblem::NotPem);
    }
    if certificates.is_empty() {
        return Err(CaProblem::NoCertificate);
    }
    let mut roots = RootCertStore::empty();
    for (i, der) in certificates.iter().enumerate() {
        roots
            .add(CertificateDer::from(der.as_slice()))
            .map_err(|e| CaProblem::BadCertificate {
                index: i + 1,
                why: e.to_string(),
            })?;
    }
    Ok(CaCertificates {
        certificates,
        has_private_key,
    })
}

/// The proxies the environment names. Each URL may hold a user and a
/// password, so only its scheme, host and port are ever shown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// `HTTPS_PROXY` (or `https_proxy`): for https URLs.
    pub https: Option<ProxyUrl>,
    /// `HTTP_PROXY` (or `http_proxy`): for http URLs. Ignored when
    /// `REQUEST_METHOD` is set (a CGI request may set `Proxy:`), as reqwest
    /// does.
    pub http: Option<ProxyUrl>,
    /// `ALL_PROXY` (or `all_proxy`): for both, where the above are unset.
    pub all: Option<ProxyUrl>,
    /// `NO_PROXY` (or `no_proxy`): hosts, domains and networks reached
    /// directly (reqwest's syntax: `localhost,.internal,10.0.0.0/8`).
    pub no_proxy: Option<String>,
}

/// One proxy's URL.
#[derive(Clone)]
pub struct ProxyUrl {
    /// As reqwest takes it (`http://` added where the value has no scheme).
    url: SecretString,
    /// `scheme://host:port`, without credentials or path.
    shown: String,
}

impl PartialEq for ProxyUrl {
    fn eq(&self, other: &Self) -> bool {
        self.url.expose_secret() == other.url.expose_secret()
    }
}

impl Eq for ProxyUrl {}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxies")
            .field("https", &self.https)
            .field("http", &self.http)
            .field("all", &self.all)
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// A proxy variable whose value is no proxy URL. Names the variable, never
/// the value (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {variable}: {why}")]
pub struct ProxyProblem {
    pub variable: &'static str,
    pub why: String,
}

impl Proxies {
    /// The proxies `var` (an environment) names: the first of each pair
    /// that is set wins, upper case first; an empty value means none.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ProxyProblem> {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| var(name).map(|value| (name, value)))
                .filter(|(_, value)| !value.trim().is_empty())
        };
        let url = |names| first(names).map(|(name, value)| ProxyUrl::parse(name, &value));
        let cgi = var("REQUEST_METHOD").is_some();
        Ok(Self {
            https: url(["HTTPS_PROXY", "https_proxy"]).transpose()?,
            http: if cgi {
                None
            } else {
                url(["HTTP_PROXY", "http_proxy"]).transpose()?
            },
            all: url(["ALL_PROXY", "all_proxy"]).transpose()?,
            no_proxy: first(["NO_PROXY", "no_proxy"]).map(|(_, value)| value),
        })
    }

    /// Whether any proxy is set.
    pub fn any(&self) -> bool {
        self.https.is_some() || self.http.is_some() || self.all.is_some()
    }

    /// As reqwest's proxies, in the order they are tried.
    pub(super) fn reqwest(&self) -> reqwest::Result<Vec<reqwest::Proxy>> {
        let no_proxy = || {
            self.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string)
        };
        let mut proxies = Vec::new();
        if let Some(https) = &self.https {
            proxies.push(reqwest::Proxy::https(https.url.expose_secret())?.no_proxy(no_proxy()));
        }
        if let Some(http) = &self.http {
            proxies.push(reqwest::Proxy::http(http.url.expose_secret())?.no_proxy(no_proxy()));
        }
        if let Some(all) = &self.all {
            proxies.push(reqwest::Proxy::all(all.url.expose_secret())?.no_proxy(no_proxy()));
        }
        Ok(proxies)
    }
}

impl ProxyUrl {
    /// `value` of `variable`: `[scheme://][user:password@]host[:port]`,
    /// scheme `http` (the default) or `https`.
    fn parse(variable: &'static str, value: &str) -> Result<Self, ProxyProblem> {
        let problem = |why: &str| ProxyProblem {
            variable,
            why: why.to_owned(),
        };
        let value = value.trim();
        let text = if value.contains("://") {
            value.to_owned()
        } else {
            format!("http://{value}")
        };
        let url = reqwest::Url::parse(&text)
            .map_err(|_| problem("is not a proxy URL (expected http://host:port)"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(problem(
                "names a proxy scheme relinkd does not speak (use http:// or https://)",
            ));
        }
        let Some(host) = url.host_str() else {
            return Err(problem("is not a proxy URL: it names no host"));
        };
        // A `/`, `?` or `#` in an unencoded password ends the authority
        // early: the rest of the password would become the path and the
        // start of it the host, which is then shown in logs.
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(problem(
                "has more than scheme://[user:password@]host:port \
                 (percent-encode a /, ? or # in the credentials)",
            ));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        // Checked as reqwest will take it.
        reqwest::Proxy::all(url.as_str())
            .map_err(|_| problem("is not a proxy URL (expected http://host:port)"))?;
        Ok(Self {
            shown: format!("{}://{host}:{port}", url.scheme()),
            url: SecretString::from(url.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn proxies_are_read_upper_case_first_and_shown_without_credentials() {
        let proxies = Proxies::from_env(env(&[
            ("HTTPS_PROXY", "http://alice:s3cret@proxy.corp:3128"),
            ("https_proxy", "http://other:1"),
            ("http_proxy", "proxy.corp"),
            ("no_proxy", "localhost,.internal"),
        ]))
        .unwrap();
        assert_eq!(
            proxies.https.as_ref().unwrap().to_string(),
            "http://proxy.corp:3128"
        );
        assert_eq!(
            proxies.http.as_ref().unwrap().to_string(),
            "http://proxy.corp:80"
        );
        assert_eq!(proxies.all, None);
        assert_eq!(proxies.no_proxy.as_deref(), Some("localhost,.internal"));
        assert!(!format!("{proxies:?}").contains("s3cret"));
        assert_eq!(proxies.reqwest().unwrap().len(), 2);
    }

    #[test]
    fn an_empty_variable_means_no_proxy_and_cgi_ignores_http_proxy() {
        let proxies = Proxies::from_env(env(&[
            ("HTTPS_PROXY", ""),
            ("https_proxy", "http://ignored:1"),
            ("HTTP_PROXY", "http://proxy:3128"),
            ("REQUEST_METHOD", "GET"),
        ]))
        .unwrap();
        assert!(!proxies.any());
        assert_eq!(Proxies::from_env(env(&[])).unwrap(), Proxies::default());
    }

    #[test]
    fn a_bad_proxy_value_names_the_variable_but_not_the_value() {
        for value in [
            "http://user:pw@",
            "socks5://user:pw@host:1080",
            "http://[::1",
            // An unencoded `/` in the password: the host would be "user".
            "http://user:12/pw@proxy:3128",
            "http://user:pw?x@proxy:3128",
        ] {
            let problem = Proxies::from_env(env(&[("ALL_PROXY", value)])).unwrap_err();
            assert_eq!(problem.variable, "ALL_PROXY");
            let text = problem.to_string();
            assert!(
                text.starts_with("environment variable ALL_PROXY: "),
                "{text}"
            );
            assert!(!text.contains("pw"), "{text}");
        }
    }

    #[test]
    fn ca_text_problems_are_told_apart() {
        assert_eq!(
            ca_certificates(b"\x30\x82\x01\x0a").unwrap_err(),
            CaProblem::NotPem
        );
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            ca_certificates(key_only).unwrap_err(),
            CaProblem::NoCertificate
        );
        let not_x509 = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            ca_certificates(not_x509).unwrap_err(),
            CaProblem::BadCertificate { index: 1, .. }
        ));
        let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(matches!(
            ca_certificates(unterminated).unwrap_err(),
            CaProblem::BadPem(_)
        ));
    }

    #[test]
    fn a_generated_ca_is_read_with_its_key_noticed() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = format!("{}{}", cert.pem(), cert.pem());
        let read = ca_certificates(pem.as_bytes()).unwrap();
        assert_eq!(read.certificates.len(), 2);
        assert!(!read.has_private_key);
        let with_key = format!("{}{}", cert.pem(), key.serialize_pem());
        assert!(
            ca_certificates(with_key.as_bytes())
                .unwrap()
                .has_private_key
        );
    }
}
