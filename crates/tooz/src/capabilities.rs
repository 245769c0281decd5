//! Capabilities: the msgpack value a member attaches to its membership.
//!
//! Encoded exactly as Python tooz encodes them (oslo.serialization `msgpackutils`, packed with
//! `use_bin_type=True`): bytes as msgpack *bin*, text as *str*, maps in insertion order, and
//! datetimes as oslo's extension type 1 ([`OsloDateTime`]). Capabilities written by another
//! member are untrusted input: decoding checks the size first, limits nesting depth and never
//! pre-allocates from a length prefix.

use std::fmt;

use rmpv::Value;

use crate::error::{Error, Result};

/// The largest encoded capabilities accepted, in bytes (64 KiB), on every backend.
pub const MAX_CAPABILITIES_LEN: usize = 64 * 1024;

/// The deepest nesting of arrays and maps accepted when decoding.
pub const MAX_CAPABILITIES_DEPTH: usize = 64;

/// oslo.serialization's extension code for `datetime.datetime`.
pub const OSLO_DATETIME_EXT: i8 = 1;

/// A member's capabilities: any msgpack value (tooz's default is nil).
#[derive(Clone, PartialEq)]
pub struct Capabilities(Value);

impl Default for Capabilities {
    fn default() -> Self {
        Self::none()
    }
}

impl Capabilities {
    /// No capabilities (msgpack nil, tooz's `None`).
    pub fn none() -> Self {
        Self(Value::Nil)
    }

    /// Wraps a msgpack value.
    pub fn new(value: Value) -> Self {
        Self(value)
    }

    /// The msgpack value.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// Unwraps the msgpack value.
    pub fn into_value(self) -> Value {
        self.0
    }

    /// True when these are tooz's `None`.
    pub fn is_none(&self) -> bool {
        self.0.is_nil()
    }

    /// Looks up a text key when the capabilities are a map (as tooz's partitioner reads
    /// `caps["weight"]`).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .as_map()?
            .iter()
            .find_map(|(k, v)| map_key_is(k, key).then_some(v))
    }

    /// Converts any serde-serializable value. Note that `Vec<u8>` serializes as an array of
    /// integers unless marked `#[serde(with = "serde_bytes")]`; use [`Value::Binary`] for bytes.
    /// Structs become maps keyed by field name, as a Python reader expects.
    pub fn from_serde<T: serde::Serialize>(value: &T) -> Result<Self> {
        let bytes = rmp_serde::to_vec_named(value).map_err(|e| Error::Serialization {
            reason: e.to_string(),
        })?;
        Self::decode(&bytes)
    }

    /// Converts into any serde-deserializable type.
    pub fn to_serde<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &self.0).map_err(|e| Error::Serialization {
            reason: e.to_string(),
        })?;
        rmp_serde::from_slice(&bytes).map_err(|e| Error::Serialization {
            reason: e.to_string(),
        })
    }

    /// The JSON form, for display and the command line. Lossy where JSON has no equivalent:
    /// bytes become text when valid UTF-8 and an array of numbers otherwise, an oslo datetime
    /// becomes an ISO-8601 string, other extension values become `{"ext": code, "data": [..]}`,
    /// and non-text map keys are written as their JSON text.
    pub fn to_json(&self) -> serde_json::Value {
        value_to_json(&self.0)
    }

    /// The msgpack encoding, as tooz writes it, checked against [`MAX_CAPABILITIES_LEN`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &self.0).map_err(|e| Error::Serialization {
            reason: e.to_string(),
        })?;
        if buf.len() > MAX_CAPABILITIES_LEN {
            return Err(Error::CapabilitiesTooLarge {
                size: buf.len(),
                max: MAX_CAPABILITIES_LEN,
            });
        }
        Ok(buf)
    }

    /// Decodes bytes written by any member, ours or Python's. Refuses oversized input, nesting
    /// deeper than [`MAX_CAPABILITIES_DEPTH`], truncated values and trailing bytes. (The
    /// reserved marker `0xc1` reads as nil, as `rmpv` reads it, where Python would refuse it.)
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode_value(bytes).map(Self)
    }
}

/// Whether a map key is `key`, as text or as bytes (Python 2 era writers stored keys as bytes,
/// which tooz still accepts).
pub(crate) fn map_key_is(k: &Value, key: &str) -> bool {
    match k {
        Value::String(s) => s.as_str() == Some(key),
        Value::Binary(b) => b.as_slice() == key.as_bytes(),
        _ => false,
    }
}

/// Decodes one bounded msgpack value that must fill `bytes` exactly.
pub(crate) fn decode_value(bytes: &[u8]) -> Result<Value> {
    decode_value_within(bytes, MAX_CAPABILITIES_LEN, MAX_CAPABILITIES_DEPTH)
}

/// [`decode_value`] with other limits, for a record that wraps capabilities: it must allow
/// the capabilities' own limits plus what the wrapping adds, or capabilities accepted on
/// write would make the record unreadable.
pub(crate) fn decode_value_within(bytes: &[u8], max_len: usize, max_depth: usize) -> Result<Value> {
    if bytes.len() > max_len {
        return Err(Error::CapabilitiesTooLarge {
            size: bytes.len(),
            max: max_len,
        });
    }
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, max_depth).map_err(|e| {
        Error::Serialization {
            reason: format!("undecodable msgpack ({} bytes): {e}", bytes.len()),
        }
    })?;
    if !rest.is_empty() {
        return Err(Error::Serialization {
            reason: format!("{} trailing bytes after a msgpack value", rest.len()),
        });
    }
    Ok(value)
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Capabilities({})", self.to_json())
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl From<Value> for Capabilities {
    fn from(value: Value) -> Self {
        Self(value)
    }
}

impl From<serde_json::Value> for Capabilities {
    fn from(json: serde_json::Value) -> Self {
        Self(json_to_value(json))
    }
}

impl From<OsloDateTime> for Capabilities {
    fn from(dt: OsloDateTime) -> Self {
        Self(dt.to_value())
    }
}

fn json_to_value(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::from(s),
        J::Array(items) => Value::Array(items.into_iter().map(json_to_value).collect()),
        J::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (Value::from(k), json_to_value(v)))
                .collect(),
        ),
    }
}

fn value_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => i
            .as_u64()
            .map(J::from)
            .or_else(|| i.as_i64().map(J::from))
            .unwrap_or(J::Null),
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => bytes_to_json(b),
        Value::Array(items) => J::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (json_key(k), value_to_json(v)))
                .collect(),
        ),
        Value::Ext(code, data) => match OsloDateTime::from_value(value) {
            Some(dt) => J::String(dt.to_string()),
            None => serde_json::json!({ "ext": code, "data": bytes_to_json(data) }),
        },
    }
}

fn bytes_to_json(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::Value::String(text.to_owned()),
        Err(_) => serde_json::Value::Array(bytes.iter().map(|b| (*b).into()).collect()),
    }
}

fn json_key(key: &Value) -> String {
    match key {
        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        other => value_to_json(other).to_string(),
    }
}

/// A `datetime.datetime` as oslo.serialization packs it: extension type 1 whose payload is a
/// msgpack map with the keys `day, month, year, hour, minute, second, microsecond` in that
/// order, plus `tz` (a zone name) when the datetime was timezone-aware.
///
/// tooz's file driver stamps members with `joined_on` in this form (naive local time).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OsloDateTime {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–59.
    pub second: u8,
    /// Microsecond, 0–999,999.
    pub microsecond: u32,
    /// The zone name of an aware datetime, `None` for a naive one.
    pub tz: Option<String>,
}

impl OsloDateTime {
    /// A naive datetime.
    pub fn naive(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Self {
        Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            microsecond: 0,
            tz: None,
        }
    }

    /// The same datetime with microseconds.
    pub fn with_microsecond(mut self, microsecond: u32) -> Self {
        self.microsecond = microsecond;
        self
    }

    /// The extension value, byte-identical to oslo's packing.
    pub fn to_value(&self) -> Value {
        let mut fields = vec![
            (Value::from("day"), Value::from(self.day)),
            (Value::from("month"), Value::from(self.month)),
            (Value::from("year"), Value::from(self.year)),
            (Value::from("hour"), Value::from(self.hour)),
            (Value::from("minute"), Value::from(self.minute)),
            (Value::from("second"), Value::from(self.second)),
            (Value::from("microsecond"), Value::from(self.microsecond)),
        ];
        if let Some(tz) = &self.tz {
            fields.push((Value::from("tz"), Value::from(tz.as_str())));
        }
        let mut payload = Vec::new();
        rmpv::encode::write_value(&mut payload, &Value::Map(fields))
            .expect("writing to a Vec cannot fail");
        Value::Ext(OSLO_DATETIME_EXT, payload)
    }

    /// Reads an oslo datetime extension value; `None` for anything else or a malformed payload.
    pub fn from_value(value: &Value) -> Option<Self> {
        let Value::Ext(OSLO_DATETIME_EXT, payload) = value else {
            return None;
        };
        let map = decode_value(payload).ok()?;
        let caps = Capabilities(map);
        let int = |key: &str| caps.get(key).and_then(Value::as_i64);
        let small = |key: &str| int(key).and_then(|v| u8::try_from(v).ok());
        Some(Self {
            year: i32::try_from(int("year")?).ok()?,
            month: small("month")?,
            day: small("day")?,
            hour: small("hour")?,
            minute: small("minute")?,
            second: small("second")?,
            microsecond: u32::try_from(int("microsecond")?).ok()?,
            tz: caps.get("tz").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

impl fmt::Display for OsloDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.microsecond
        )?;
        if let Some(tz) = &self.tz {
            write!(f, " {tz}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn encodes_like_python_tooz() {
        // Observed from oslo msgpackutils: None -> c0, {} -> 80, {'weight': 3} -> 81 a6"weight" 03.
        assert_eq!(hex(&Capabilities::none().encode().unwrap()), "c0");
        let empty = Capabilities::from(serde_json::json!({}));
        assert_eq!(hex(&empty.encode().unwrap()), "80");
        let weight = Capabilities::from(serde_json::json!({"weight": 3}));
        assert_eq!(
            hex(&weight.encode().unwrap()),
            "81a6776569676874 03".replace(' ', "")
        );
        let bytes = Capabilities::new(Value::Binary(b"ab".to_vec()));
        assert_eq!(hex(&bytes.encode().unwrap()), "c4026162");
    }

    #[test]
    fn datetime_matches_oslo_bytes() {
        // datetime(2024,1,2,3,4,5,678901) as observed from Python.
        let expected = concat!(
            "c73c01",
            "87",
            "a3646179",
            "02",
            "a56d6f6e7468",
            "01",
            "a479656172",
            "cd07e8",
            "a4686f7572",
            "03",
            "a66d696e757465",
            "04",
            "a67365636f6e64",
            "05",
            "ab6d6963726f7365636f6e64",
            "ce000a5bf5",
        );
        let dt = OsloDateTime::naive(2024, 1, 2, 3, 4, 5).with_microsecond(678_901);
        let encoded = Capabilities::from(dt.clone()).encode().unwrap();
        assert_eq!(hex(&encoded), expected);
        let back = Capabilities::decode(&encoded).unwrap();
        assert_eq!(OsloDateTime::from_value(back.value()), Some(dt));
        assert_eq!(
            back.to_json(),
            serde_json::json!("2024-01-02T03:04:05.678901")
        );
    }

    #[test]
    fn serde_bridge_round_trips() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Caps {
            weight: u32,
            zone: String,
        }
        let caps = Capabilities::from_serde(&Caps {
            weight: 2,
            zone: "a".into(),
        })
        .unwrap();
        assert_eq!(caps.get("weight").and_then(Value::as_u64), Some(2));
        let back: Caps = Capabilities::decode(&caps.encode().unwrap())
            .unwrap()
            .to_serde()
            .unwrap();
        assert_eq!(back.zone, "a");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(Capabilities::decode(&[]).is_err(), "nothing");
        assert!(
            Capabilities::decode(&[0xa5, b'a']).is_err(),
            "truncated str"
        );
        assert!(
            Capabilities::decode(&[0xc7, 0x10, 0x01]).is_err(),
            "truncated ext"
        );
        assert!(
            Capabilities::decode(&[0x92, 0x01]).is_err(),
            "truncated array"
        );
        assert!(
            Capabilities::decode(&[0xc0, 0xc0]).is_err(),
            "trailing bytes"
        );
        // An array claiming 4 billion elements must fail without allocating them.
        assert!(Capabilities::decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        let deep = vec![0x91; MAX_CAPABILITIES_DEPTH + 10];
        assert!(Capabilities::decode(&deep).is_err(), "nesting too deep");
        let big = Capabilities::new(Value::Binary(vec![0; MAX_CAPABILITIES_LEN]));
        let err = big.encode().unwrap_err();
        assert!(matches!(err, Error::CapabilitiesTooLarge { .. }), "{err}");
    }

    #[test]
    fn json_view_is_readable() {
        let caps = Capabilities::new(Value::Map(vec![
            (Value::from("b"), Value::Binary(vec![0xff])),
            (Value::from(1), Value::from("one")),
        ]));
        assert_eq!(caps.to_json(), serde_json::json!({"b": [255], "1": "one"}));
    }
}
