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
}
