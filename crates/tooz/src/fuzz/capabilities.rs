//! Capability bytes from other members, random and mutated: reading them must never panic,
//! and what we encode reads back as itself.

use super::*;

/// A small msgpack value; strings and bytes from the hostile name pieces.
fn msgpack(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 7 } else { 9 }) {
        0 => Value::Nil,
        1 => Value::Boolean(rng.chance(2)),
        2 => Value::from(rng.next_u64() as i64),
        // Finite by construction: NaN is not equal to itself.
        3 => Value::F64(f64::from(rng.next_u64() as u32) / 7.0),
        4 => Value::from(String::from_utf8_lossy(&short_name(rng)).into_owned()),
        5 => Value::Binary(short_name(rng)),
        6 => {
            let code = if rng.chance(2) {
                1
            } else {
                rng.next_u64() as i8
            };
            Value::Ext(code, short_name(rng))
        }
        7 => Value::Array((0..rng.below(4)).map(|_| msgpack(rng, depth - 1)).collect()),
        _ => Value::Map(
            (0..rng.below(4))
                .map(|_| (msgpack(rng, 0), msgpack(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// msgpack markers (containers, strings, extensions with their length widths) and bytes that
/// are their own values.
#[rustfmt::skip]
const MARKERS: &[u8] = &[
    0x00, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa1, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9,
    0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff,
];

/// One level of nesting each: a one-element array, a one-entry map (nil key), an array16.
const LEVELS: &[&[u8]] = &[&[0x91], &[0x81, 0xc0], &[0xdc, 0x00, 0x01]];
/// Markers whose 32-bit length, `0xffffffff`, claims far more than any input holds.
const HUGE: &[u8] = &[0xc6, 0xdb, 0xdd, 0xdf, 0xc9];

fn hostile_byte(rng: &mut Rng) -> u8 {
    if rng.chance(2) {
        rng.pick(MARKERS)
    } else {
        rng.next_u64() as u8
    }
}

/// Bytes that may be msgpack: random, nested around the depth limit, oversized, or a valid
/// encoding with bytes flipped, inserted, deleted, cut, or a huge length prefix spliced in.
fn capability_bytes(rng: &mut Rng, value: &Value) -> Vec<u8> {
    match rng.below(16) {
        0..=3 => (0..rng.below(48)).map(|_| hostile_byte(rng)).collect(),
        4 => {
            let depth = if rng.chance(64) {
                rng.below(10_000)
            } else {
                MAX_CAPABILITIES_DEPTH - 3 + rng.below(8)
            };
            let mut bytes = Vec::new();
            for _ in 0..depth {
                bytes.extend_from_slice(rng.pick(LEVELS));
            }
            bytes.push(0xc0);
            bytes
        }
        5 if rng.chance(64) => vec![0xc4; MAX_CAPABILITIES_LEN + 1 + rng.below(3)],
        _ => {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, value).expect("writing to a Vec cannot fail");
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(5) {
                    0 if at < bytes.len() => bytes[at] ^= 1_u8 << rng.below(8),
                    1 => bytes.insert(at, hostile_byte(rng)),
                    2 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    3 => bytes.truncate(at),
                    _ => {
                        let tail = bytes.split_off(at);
                        bytes.extend_from_slice(&[rng.pick(HUGE), 0xff, 0xff, 0xff, 0xff]);
                        bytes.extend_from_slice(&tail);
                    }
                }
            }
            bytes
        }
    }
}

#[test]
fn capabilities_bytes() {
    let (mut rng, seed) = setup("capabilities");
    let mut tally = Tally::default();
    for _ in 0..cases() {
        let value = msgpack(&mut rng, 3);
        let bytes = capability_bytes(&mut rng, &value);
        tally.case(|tally| {
            // What we encode reads back as itself (a value read back as another counts as a
            // collision).
            let caps = Capabilities::new(value);
            match caps
                .encode()
                .and_then(|encoded| Capabilities::decode(&encoded))
            {
                Ok(back) if back == caps => {}
                other => tally.collision(format!("{caps:?} read back as {other:?}")),
            }
            // Whatever anyone stored: a value or an error, and a value can be shown and
            // written again.
            if let Ok(read) = Capabilities::decode(&bytes) {
                let _ = (read.to_json(), format!("{read:?} {read}"));
                if let Ok(again) = read.encode() {
                    let _ = Capabilities::decode(&again);
                }
            }
            #[cfg(feature = "file")]
            {
                use crate::drivers::file::records::{MemberRecord, decode_metadata};
                let _ = MemberRecord::decode(&bytes).map(|r| format!("{r:?}"));
                let _ = decode_metadata(&bytes).map(|g| g.to_string());
            }
        });
    }
    tally.finish("capabilities", seed);
}
