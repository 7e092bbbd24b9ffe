//! Who may talk to the loopback endpoint: the shared secret (compared in
//! constant time) and the Host/Origin checks against DNS rebinding.

use std::fmt;

use hyper::header::{self, HeaderMap};
use subtle::ConstantTimeEq;

/// Header the existing opzero server sends instead of `Authorization`.
pub const SECRET_HEADER: &str = "x-opzero-secret";

/// The per-session shared secret. Its `Debug` is redacted so it cannot leak
/// into logs by accident; only [`Secret::expose`] reveals it (for the
/// discovery file).
pub struct Secret(String);

impl Secret {
    /// 32 random bytes from the OS, hex-encoded.
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|err| anyhow::anyhow!("cannot get random bytes from the OS: {err}"))?;
        Ok(Secret(hex::encode(bytes)))
    }

    /// A fixed secret, for tests.
    #[cfg(test)]
    pub(crate) fn from_text(text: String) -> Self {
        Secret(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison (the length is not secret: always 64).
    ///
    /// Word by word: the differences are OR-ed together with no early exit
    /// and only the total is compared (by `subtle`, so the compiler cannot
    /// turn that into a branch on the data). `subtle`'s slice comparison
    /// does the same a byte at a time behind an optimization barrier each,
    /// which cost a thousand instructions on every request.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        if candidate.len() != expected.len() {
            return false;
        }
        let mut diff = 0u64;
        let (words, rest) = (expected.chunks_exact(8), candidate.chunks_exact(8));
        let (tail_a, tail_b) = (words.remainder(), rest.remainder());
        for (a, b) in words.zip(rest) {
            let a = u64::from_ne_bytes(a.try_into().expect("8 bytes"));
            let b = u64::from_ne_bytes(b.try_into().expect("8 bytes"));
            diff |= a ^ b;
        }
        for (a, b) in tail_a.iter().zip(tail_b) {
            diff |= u64::from(a ^ b);
        }
        diff.ct_eq(&0).into()
    }
}

impl Secret {
    /// An `Authorization` value that is `Bearer <secret>` (scheme in any
    /// case, blanks around the token ignored).
    pub(crate) fn matches_authorization(&self, value: &[u8]) -> bool {
        value.len() > 7
            && value[..7].eq_ignore_ascii_case(b"bearer ")
            && self.matches(value[7..].trim_ascii())
    }

    /// An `X-OPZero-Secret` value that is the secret (blanks ignored).
    pub(crate) fn matches_secret_header(&self, value: &[u8]) -> bool {
        self.matches(value.trim_ascii())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `Authorization: Bearer <secret>` or `X-OPZero-Secret: <secret>`.
pub fn check_secret(headers: &HeaderMap, secret: &Secret) -> Result<(), &'static str> {
    let mut presented = false;
    for value in headers.get_all(header::AUTHORIZATION) {
        presented = true;
        if secret.matches_authorization(value.as_bytes()) {
            return Ok(());
        }
    }
    for value in headers.get_all(SECRET_HEADER) {
        presented = true;
        if secret.matches_secret_header(value.as_bytes()) {
            return Ok(());
        }
    }
    Err(if presented {
        "wrong secret"
    } else {
        "missing secret: send Authorization: Bearer <secret> (the secret is in the discovery file)"
    })
}

/// The Host header must name this loopback listener exactly
/// (`127.0.0.1:<port>` or `localhost:<port>`, any case). Checked on every
/// request, so without building strings.
pub fn check_host(headers: &HeaderMap, port: u16) -> Result<(), String> {
    let Some(host) = headers.get(header::HOST) else {
        return Err("missing Host header".into());
    };
    if host_names_listener(host.as_bytes(), port) {
        Ok(())
    } else {
        let host = host.to_str().unwrap_or("").to_ascii_lowercase();
        Err(format!(
            "Host {host:?} is not 127.0.0.1:{port} or localhost:{port}"
        ))
    }
}

pub(crate) fn host_names_listener(host: &[u8], port: u16) -> bool {
    let after = |prefix: &[u8]| {
        (host.len() > prefix.len() && host[..prefix.len()].eq_ignore_ascii_case(prefix))
            .then(|| &host[prefix.len()..])
    };
    let Some(digits) = after(b"127.0.0.1:").or_else(|| after(b"localhost:")) else {
        return false;
    };
    // The port exactly as the listener would print it: no sign, no leading zero.
    digits == super::decimal::Decimal::of(u64::from(port)).as_bytes()
}

/// A browser Origin, when present, must be a loopback one (any port: the
/// opzero web UI runs on its own port).
pub fn check_origin(headers: &HeaderMap) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let text = origin.to_str().unwrap_or("");
    if origin_is_loopback(text) {
        Ok(())
    } else {
        Err(format!("Origin {text:?} is not a loopback origin"))
    }
}

fn origin_is_loopback(origin: &str) -> bool {
    let lower = origin.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, tail)) if tail.is_empty() || port_ok(tail) => return host == "::1",
            _ => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((host, tail)) if port_ok(&format!(":{tail}")) => host,
            Some(_) => return false,
            None => authority,
        }
    };
    if host == "localhost" {
        return true;
    }
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

fn port_ok(tail: &str) -> bool {
    tail.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn secret_is_64_hex_and_redacted() {
        let s = Secret::generate().unwrap();
        assert_eq!(s.expose().len(), 64);
        assert!(s.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!format!("{s:?}").contains(s.expose()));
        assert_ne!(s.expose(), Secret::generate().unwrap().expose());
    }

    #[test]
    fn secret_check() {
        let s = Secret("abc".into());
        assert!(check_secret(&headers(&[("authorization", "Bearer abc")]), &s).is_ok());
        assert!(check_secret(&headers(&[("authorization", "bearer  abc ")]), &s).is_ok());
        assert!(check_secret(&headers(&[("x-opzero-secret", "abc")]), &s).is_ok());
        assert_eq!(
            check_secret(&headers(&[("authorization", "Bearer abd")]), &s),
            Err("wrong secret")
        );
        assert_eq!(
            check_secret(&headers(&[("authorization", "Basic abc")]), &s),
            Err("wrong secret")
        );
        assert!(check_secret(&headers(&[]), &s)
            .unwrap_err()
            .starts_with("missing"));
    }

    #[test]
    fn secret_match_is_exact() {
        let s = Secret::generate().unwrap();
        let good = s.expose().as_bytes().to_vec();
        assert!(s.matches(&good));
        for at in [0, 7, 8, 31, 56, 63] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert!(!s.matches(&bad), "a difference at byte {at} was missed");
        }
        assert!(!s.matches(&good[..63]));
        assert!(!s.matches(&[good.as_slice(), b"0"].concat()));
        assert!(!s.matches(b""));
        // Lengths that are not a multiple of 8 compare their tails too.
        let odd = Secret("abcdefghijk".into());
        assert!(odd.matches(b"abcdefghijk"));
        assert!(!odd.matches(b"abcdefghijz"));
    }

    #[test]
    fn host_check() {
        for port in [1, 9, 10, 80, 4097, 65535] {
            assert!(check_host(&headers(&[("host", &format!("127.0.0.1:{port}"))]), port).is_ok());
            assert!(check_host(&headers(&[("host", &format!("localhost:{port}"))]), port).is_ok());
            assert!(
                check_host(&headers(&[("host", &format!("127.0.0.1:0{port}"))]), port).is_err()
            );
            assert!(
                check_host(&headers(&[("host", &format!("127.0.0.1:{port}0"))]), port).is_err()
            );
            assert!(
                check_host(&headers(&[("host", &format!("127.0.0.1:+{port}"))]), port).is_err()
            );
        }
        assert!(check_host(&headers(&[("host", "127.0.0.1:")]), 80).is_err());
        assert!(check_host(&headers(&[("host", "127.0.0.1")]), 80).is_err());
        assert!(check_host(&headers(&[("host", "127.0.0.2:80")]), 80).is_err());
        assert!(check_host(&headers(&[("host", "localhost.:80")]), 80).is_err());
        assert!(check_host(&headers(&[("host", "127.0.0.1:80")]), 80).is_ok());
        assert!(check_host(&headers(&[("host", "LOCALHOST:80")]), 80).is_ok());
        assert!(check_host(&headers(&[("host", "127.0.0.1:81")]), 80).is_err());
        assert!(check_host(&headers(&[("host", "evil.example:80")]), 80).is_err());
        assert!(check_host(&headers(&[]), 80).is_err());
    }

    #[test]
    fn origins() {
        for ok in [
            "http://127.0.0.1:4097",
            "http://localhost",
            "https://localhost:3000",
            "http://[::1]:5",
            "http://127.1.2.3",
        ] {
            assert!(origin_is_loopback(ok), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.example",
            "http://127.0.0.1.evil.example",
            "file://",
            "http://localhost.evil:1",
            "http://user@127.0.0.1",
            "http://[::2]",
            "http://127.0.0.1:x",
        ] {
            assert!(!origin_is_loopback(bad), "{bad}");
        }
    }
}
