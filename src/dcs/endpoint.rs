//! Where the DCS API lives: `https://dcs.{region}.myhuaweicloud.com` by default, or an explicit
//! override (Open Telekom Cloud, Huawei Cloud Stack, the simulator).

use super::error::DcsError;
use reqwest::Url;
use std::net::IpAddr;

/// A validated API base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: Url,
}

impl Endpoint {
    /// The Huawei Cloud endpoint of a region, e.g. `cn-north-4`.
    pub fn for_region(region: &str) -> Result<Self, DcsError> {
        let valid = !region.is_empty()
            && region.len() <= 64
            && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(DcsError::InvalidRequest(format!("region {region:?} is not a region id such as cn-north-4")));
        }
        Self::parse(&format!("https://dcs.{region}.myhuaweicloud.com"))
    }

    /// The override if given, else the region's default endpoint.
    pub fn resolve(region: &str, endpoint_override: Option<&str>) -> Result<Self, DcsError> {
        match endpoint_override {
            Some(url) => Self::parse(url),
            None => Self::for_region(region),
        }
    }

    /// Parses an explicit endpoint. It must be `https://`, except on a loopback address (the
    /// simulator), and carry no credentials, query or fragment.
    pub fn parse(url: &str) -> Result<Self, DcsError> {
        let invalid = |why: &str| DcsError::InvalidRequest(format!("endpoint {url:?} {why}"));
        let mut base = Url::parse(url).map_err(|e| invalid(&format!("is not a URL ({e})")))?;
        let Some(host) = base.host_str() else {
            return Err(invalid("has no host"));
        };
        let loopback = host == "localhost"
            || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match base.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(invalid("must use https:// (plain http is allowed only on loopback addresses)")),
            _ => return Err(invalid("must be an https:// URL")),
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("must not have a query or fragment"));
        }
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        Ok(Self { base })
    }

    /// The `Host` header value the signature covers: host, plus the port when not the default.
    pub fn host_header(&self) -> String {
        let host = self.base.host_str().unwrap_or_default();
        match self.base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The host name alone (for allow-lists).
    pub fn host(&self) -> &str {
        self.base.host_str().unwrap_or_default()
    }

    /// True when one of the host patterns admits this endpoint's host, or when there are none. Only hosts are
    /// compared: the endpoint's scheme and port do not matter, and a scheme, port or path written in a pattern is
    /// ignored. `*` matches any run of characters; case, IPv6 brackets and a trailing dot do not count. Plain http
    /// is never admitted here for a host that is not loopback: [`Endpoint::parse`] refuses it first.
    pub fn allowed_by(&self, patterns: &[String]) -> bool {
        let host = normalize_host(self.host());
        patterns.is_empty() || patterns.iter().any(|p| glob_match(&host_of_pattern(p), &host))
    }

    /// Base URL without a trailing slash, e.g. `https://dcs.cn-north-4.myhuaweicloud.com`.
    pub fn as_str(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `scheme://host[:port]`.
    pub(crate) fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    /// Any path prefix of the base URL (empty for a plain host).
    pub(crate) fn path_prefix(&self) -> &str {
        self.base.path().trim_end_matches('/')
    }
}

/// A host as the allow-list compares it: lower case, without IPv6 brackets or a trailing dot.
fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

/// The host part of an allow-list pattern: `https://dcs.*.example.com:443/v2` gives `dcs.*.example.com`,
/// `[::1]:8443` gives `::1`; a bare IPv6 address (several colons) is kept whole.
fn host_of_pattern(pattern: &str) -> String {
    let pattern = pattern.trim();
    let without_scheme = pattern.split_once("://").map_or(pattern, |(_, rest)| rest);
    let authority = without_scheme.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None if authority.matches(':').count() == 1 => authority.split(':').next().unwrap_or_default(),
        None => authority,
    };
    normalize_host(host)
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(after_head) = text.strip_prefix(head) else { return false };
            (0..=after_head.len())
                .filter(|&i| after_head.is_char_boundary(i))
                .any(|i| glob_match(rest, &after_head[i..]))
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_gives_the_huawei_cloud_endpoint() {
        let e = Endpoint::for_region("cn-north-4").unwrap();
        assert_eq!(e.as_str(), "https://dcs.cn-north-4.myhuaweicloud.com");
        assert_eq!(e.host_header(), "dcs.cn-north-4.myhuaweicloud.com");
        assert!(Endpoint::for_region("cn north").is_err());
    }

    #[test]
    fn override_wins_over_region() {
        let e = Endpoint::resolve("eu-de", Some("https://dcs.eu-de.otc.t-systems.com/")).unwrap();
        assert_eq!(e.as_str(), "https://dcs.eu-de.otc.t-systems.com");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let sim = Endpoint::parse("http://127.0.0.1:8443").unwrap();
        assert_eq!(sim.host_header(), "127.0.0.1:8443");
        assert!(Endpoint::parse("http://[::1]:80").is_ok());
        assert!(Endpoint::parse("http://localhost:1").is_ok());
        assert!(Endpoint::parse("http://10.0.0.1:80").is_err());
        assert!(Endpoint::parse("ftp://127.0.0.1").is_err());
        assert!(Endpoint::parse("https://user:pw@dcs.example.com").is_err());
    }

    fn patterns(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    fn allowed(url: &str, list: &[&str]) -> bool {
        Endpoint::parse(url).unwrap().allowed_by(&patterns(list))
    }

    const PUBLIC: &[&str] = &["dcs.*.myhuaweicloud.com", "dcs.*.otc.t-systems.com"];

    #[test]
    fn the_public_patterns_admit_every_region_of_huawei_cloud_and_open_telekom_cloud() {
        assert!(Endpoint::for_region("cn-north-4").unwrap().allowed_by(&patterns(PUBLIC)));
        assert!(allowed("https://dcs.ap-southeast-3.myhuaweicloud.com", PUBLIC));
        assert!(allowed("https://dcs.eu-de.otc.t-systems.com", PUBLIC));
        assert!(allowed("https://DCS.EU-NL.OTC.T-SYSTEMS.COM", PUBLIC), "case does not count");
        assert!(allowed("https://dcs.eu-de.otc.t-systems.com./", PUBLIC), "nor a trailing dot");
    }

    #[test]
    fn the_public_patterns_admit_no_loopback_or_look_alike_host() {
        for url in [
            "http://127.0.0.1:8443",
            "https://127.0.0.1",
            "http://localhost:80",
            "http://[::1]:80",
            "https://dcs.example.com",
            "https://dcs.cn-north-4.myhuaweicloud.com.attacker.example",
            "https://evil-dcs.cn-north-4.myhuaweicloud.com",
            "https://dcs.eu-de.otc.t-systems.com.evil",
        ] {
            assert!(!allowed(url, PUBLIC), "{url} must not be admitted");
        }
    }

    #[test]
    fn patterns_match_the_host_whatever_the_scheme_and_port() {
        assert!(allowed("https://dcs.example.com:8443", &["dcs.example.com"]));
        assert!(allowed("https://dcs.example.com", &["dcs.example.com"]));
        assert!(allowed("http://127.0.0.1:18443", &["127.0.0.1"]), "plain http on a loopback host the list admits");
        assert!(allowed("https://127.0.0.1:9", &["127.0.0.1"]));
        // A scheme, port or path written in a pattern is not part of what it matches.
        assert!(allowed("https://dcs.example.com", &["https://dcs.example.com:443/v2"]));
        assert!(allowed("http://127.0.0.1:1", &["http://127.0.0.1:8443"]));
        assert!(allowed("https://dcs.example.com:1", &["dcs.example.com:443"]));
        assert!(allowed("http://[::1]:8443", &["::1"]));
        assert!(allowed("http://[::1]:8443", &["[::1]:1"]));
        assert!(!allowed("http://127.0.0.2:8443", &["127.0.0.1"]));
    }

    #[test]
    fn no_patterns_admit_any_host_and_plain_http_stays_refused_off_loopback() {
        assert!(allowed("https://anything.example", &[]));
        assert!(Endpoint::parse("http://dcs.example.com").is_err(), "an allow-list never makes plain http valid");
    }
}
