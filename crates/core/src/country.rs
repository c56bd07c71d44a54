//! ISO 3166-1 alpha-3 country codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid [`CountryCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid country code {input:?}: expected three ASCII uppercase letters (ISO 3166-1 alpha-3, e.g. \"USA\")")]
pub struct CountryCodeError {
    /// The rejected input, as given.
    pub input: String,
}

/// An ISO 3166-1 alpha-3 country code such as `USA` or `VNM`.
///
/// Only the shape is validated (three ASCII uppercase letters); whether a dataset knows the
/// country is checked by the dataset's own lookup, which lists its valid codes on failure.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 3]);

impl CountryCode {
    /// Validates `s` (exactly three ASCII uppercase letters, no trimming or case folding).
    pub fn new(s: &str) -> Result<Self, CountryCodeError> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(CountryCode([b[0], b[1], b[2]]))
        } else {
            Err(CountryCodeError {
                input: s.to_string(),
            })
        }
    }

    /// The code as a `&str` (always three ASCII uppercase letters).
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII uppercase letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl FromStr for CountryCode {
    type Err = CountryCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CountryCode::new(s)
    }
}

impl TryFrom<&str> for CountryCode {
    type Error = CountryCodeError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        CountryCode::new(s)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl AsRef<str> for CountryCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CountryCode::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_codes() {
        let c: CountryCode = "USA".parse().unwrap();
        assert_eq!(c.as_str(), "USA");
        assert_eq!(c.to_string(), "USA");
        assert!(CountryCode::new("VNM").unwrap() > CountryCode::new("USA").unwrap());
    }

    #[test]
    fn rejects_invalid_codes() {
        for bad in ["usa", "US", "USAA", "U1A", "", " USA", "ÜSA"] {
            let err = bad.parse::<CountryCode>().unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains("three ASCII uppercase letters"));
        }
    }

    #[test]
    fn serde_roundtrip_and_validation() {
        let c = CountryCode::new("DEU").unwrap();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, "\"DEU\"");
        assert_eq!(serde_json::from_str::<CountryCode>(&j).unwrap(), c);
        assert!(serde_json::from_str::<CountryCode>("\"deu\"").is_err());
    }
}
