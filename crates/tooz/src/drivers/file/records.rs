//! The two msgpack records of tooz's file layout, read and written byte-compatibly.
//!
//! * `.metadata`: `{"group_id": <bin>, "encoded": <bool>}`.
//! * `<sha1(member)>.raw`: `{"capabilities": .., "joined_on": <oslo datetime>, "member_id":
//!   <bin>, "encoded": <bool>}`, plus our `"liveness_lock": true` (tooz's schema allows extra
//!   keys): it says the writer holds a kernel lock on the file while it lives, so a reader that
//!   finds the file unlocked knows at once that the member is dead.
//!
//! `encoded` tells Python to hand the id back as `str`; we set it for ids that are valid UTF-8
//! (so a Python peer sees `'worker-1'`, not `b'worker-1'`) and accept either form when reading.

use std::time::{SystemTime, UNIX_EPOCH};

use rmpv::Value;

use crate::capabilities::{
    Capabilities, MAX_CAPABILITIES_DEPTH, MAX_CAPABILITIES_LEN, OsloDateTime, decode_value,
    decode_value_within, map_key_is,
};
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

/// The largest member file read: capabilities at their size cap plus the rest of the record
/// (keys, timestamp and an id of up to [`crate::MAX_NAME_LEN`] bytes take under 1.5 KiB).
pub(crate) const MAX_RECORD_LEN: usize = MAX_CAPABILITIES_LEN + 4096;

/// The decoding depth the record map spends before its capabilities begin (`rmpv` counts
/// the map value and its entries as one level each).
const RECORD_DEPTH: usize = 2;

/// A member file's content.
#[derive(Debug, Clone)]
pub(crate) struct MemberRecord {
    pub(crate) member: MemberId,
    pub(crate) capabilities: Capabilities,
    pub(crate) joined_on: Value,
    pub(crate) liveness_lock: bool,
}

impl MemberRecord {
    pub(crate) fn new(member: MemberId, capabilities: Capabilities) -> Self {
        Self {
            member,
            capabilities,
            joined_on: now_utc().to_value(),
            liveness_lock: true,
        }
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let id = self.member.as_bytes();
        let map = Value::Map(vec![
            (
                Value::from("capabilities"),
                self.capabilities.value().clone(),
            ),
            (Value::from("joined_on"), self.joined_on.clone()),
            (Value::from("member_id"), Value::Binary(id.to_vec())),
            (
                Value::from("encoded"),
                Value::Boolean(std::str::from_utf8(id).is_ok()),
            ),
            (
                Value::from("liveness_lock"),
                Value::Boolean(self.liveness_lock),
            ),
        ]);
        let bytes = encode(&map)?;
        // Refuse here what no reader would accept, rather than write a member that then
        // vanishes from every listing.
        match decode_record_map(&bytes) {
            Ok(_) => Ok(bytes),
            Err(Error::Serialization { reason }) => Err(Error::Serialization {
                reason: format!(
                    "these capabilities are refused: a member file holding them could not be \
                     read back ({reason})"
                ),
            }),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut map = decode_record_map(bytes)?;
        let member = id_field(&map, "member_id")?;
        let liveness_lock = field(&map, "liveness_lock").and_then(Value::as_bool) == Some(true);
        Ok(Self {
            member: MemberId::from(member),
            capabilities: Capabilities::new(take(&mut map, "capabilities")),
            joined_on: take(&mut map, "joined_on"),
            liveness_lock,
        })
    }
}

/// A group's `.metadata`.
pub(crate) fn encode_metadata(group: &GroupId) -> Result<Vec<u8>> {
    let id = group.as_bytes();
    encode(&Value::Map(vec![
        (Value::from("group_id"), Value::Binary(id.to_vec())),
        (
            Value::from("encoded"),
            Value::Boolean(std::str::from_utf8(id).is_ok()),
        ),
    ]))
}

pub(crate) fn decode_metadata(bytes: &[u8]) -> Result<GroupId> {
    id_field(&into_map(decode_value(bytes)?)?, "group_id").map(GroupId::from)
}

fn encode(value: &Value) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, value).map_err(|e| Error::Serialization {
        reason: e.to_string(),
    })?;
    Ok(buf)
}

type Map = Vec<(Value, Value)>;

/// A member record: within the capabilities' limits once the record around them is allowed
/// for, so that whatever capabilities a join accepts can be listed back.
fn decode_record_map(bytes: &[u8]) -> Result<Map> {
    let depth = MAX_CAPABILITIES_DEPTH + RECORD_DEPTH;
    into_map(decode_value_within(bytes, MAX_RECORD_LEN, depth)?)
}

fn into_map(value: Value) -> Result<Map> {
    match value {
        Value::Map(map) => Ok(map),
        other => Err(Error::Serialization {
            reason: format!("expected a msgpack map, found {other}"),
        }),
    }
}

/// A map entry by text key; Python 2 era writers stored keys as bytes, which tooz accepts too.
fn field<'a>(map: &'a Map, key: &str) -> Option<&'a Value> {
    map.iter()
        .find_map(|(k, v)| map_key_is(k, key).then_some(v))
}

/// Moves a value out of the map (nil if absent).
fn take(map: &mut Map, key: &str) -> Value {
    let index = map.iter().position(|(k, _)| map_key_is(k, key));
    index.map_or(Value::Nil, |i| map.swap_remove(i).1)
}

fn id_field(map: &Map, key: &str) -> Result<Vec<u8>> {
    match field(map, key) {
        Some(Value::Binary(b)) if !b.is_empty() => Ok(b.clone()),
        Some(Value::String(s)) if !s.as_bytes().is_empty() => Ok(s.as_bytes().to_vec()),
        Some(other) => Err(Error::Serialization {
            reason: format!("'{key}' must be non-empty bytes or text, found {other}"),
        }),
        None => Err(Error::Serialization {
            reason: format!("'{key}' is missing"),
        }),
    }
}

/// Now, in UTC, as a naive oslo datetime. tooz writes local time; the field is informational
/// (liveness is the file's mtime), and UTC needs no time-zone database.
fn now_utc() -> OsloDateTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    OsloDateTime::naive(
        year,
        month,
        day,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60) as u8,
    )
    .with_microsecond(since.subsec_micros())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn metadata_is_byte_identical_to_tooz() {
        // Observed from Python for b'g1': 82 a8"group_id" c4 02 "g1" a7"encoded" c2 — tooz
        // writes encoded=false for a bytes id; we write true for UTF-8 ids (see module docs).
        let bytes = encode_metadata(&GroupId::from(&[0xff, 0x01][..])).unwrap();
        assert_eq!(
            hex(&bytes),
            "82a867726f75705f6964c402ff01a7656e636f646564c2"
        );
        assert_eq!(
            decode_metadata(&bytes).unwrap(),
            GroupId::from(&[0xff, 0x01][..])
        );
    }

    #[test]
    fn member_records_round_trip_and_accept_python_forms() {
        let record = MemberRecord::new("m1".into(), serde_json::json!({"weight": 1}).into());
        let back = MemberRecord::decode(&record.encode().unwrap()).unwrap();
        assert_eq!(back.member, MemberId::from("m1"));
        assert_eq!(
            back.capabilities.to_json(),
            serde_json::json!({"weight": 1})
        );
        assert!(back.liveness_lock);
        assert!(OsloDateTime::from_value(&back.joined_on).is_some());
        // tooz's observed member file (caps {'weight': 1}, member b'm1'), without our key.
        let python = concat!(
            "84ac6361706162696c697469657381a6776569676874 01",
            "a96a6f696e65645f6f6ec73c0187a3646179 02a56d6f6e7468 01a479656172cd07e8",
            "a4686f7572 03a66d696e757465 04a67365636f6e64 05ab6d6963726f7365636f6e64ce000a5bf5",
            "a96d656d6265725f6964c4026d31a7656e636f646564c2"
        )
        .replace(' ', "");
        let bytes: Vec<u8> = (0..python.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&python[i..i + 2], 16).unwrap())
            .collect();
        let record = MemberRecord::decode(&bytes).unwrap();
        assert_eq!(record.member, MemberId::from("m1"));
        assert!(!record.liveness_lock);
    }

    fn nested(levels: usize) -> Capabilities {
        let mut value = Value::Nil;
        for _ in 0..levels {
            value = Value::Array(vec![value]);
        }
        Capabilities::new(value)
    }

    /// The deepest nesting that capabilities can have and still be read on their own.
    fn deepest_readable() -> Capabilities {
        let readable = |n: &usize| Capabilities::decode(&nested(*n).encode().unwrap()).is_ok();
        nested((0..).take_while(readable).last().unwrap())
    }

    #[test]
    fn capabilities_at_the_limits_read_back_from_a_record() {
        let big = Capabilities::new(Value::Binary(vec![7; MAX_CAPABILITIES_LEN - 3]));
        assert_eq!(big.encode().unwrap().len(), MAX_CAPABILITIES_LEN);
        let longest_id = MemberId::from(vec![b'i'; crate::MAX_NAME_LEN]);
        let record = MemberRecord::new(longest_id, big.clone());
        let back = MemberRecord::decode(&record.encode().unwrap()).unwrap();
        assert!(back.capabilities == big);

        let deepest = deepest_readable();
        let record = MemberRecord::new("m".into(), deepest.clone());
        let back = MemberRecord::decode(&record.encode().unwrap()).unwrap();
        assert!(back.capabilities == deepest);

        // One level more no reader accepts: refused on write, never written to vanish.
        let deeper = Capabilities::new(Value::Array(vec![deepest.into_value()]));
        let err = MemberRecord::new("m".into(), deeper).encode().unwrap_err();
        assert!(err.to_string().contains("could not be read back"), "{err}");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(
            MemberRecord::decode(b"\x93\x01\x02\x03").is_err(),
            "not a map"
        );
        assert!(MemberRecord::decode(b"\x80").is_err(), "no member_id");
        assert!(
            MemberRecord::decode(b"\x81\xa9member_id\x05").is_err(),
            "bad member_id"
        );
        assert!(MemberRecord::decode(b"\xde\xff").is_err(), "truncated");
        assert!(decode_metadata(b"garbage!").is_err());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_724), (2024, 1, 2));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
