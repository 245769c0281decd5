//! Whatever another member (or anyone with write access to the backend) stores, decoding it
//! gives a value or an error — never a panic, never an allocation sized by a hostile length
//! prefix — and anything we encode decodes back to itself.

use proptest::prelude::*;
use tooz::{Capabilities, MsgpackValue};

fn value() -> impl Strategy<Value = MsgpackValue> {
    let leaf = prop_oneof![
        Just(MsgpackValue::Nil),
        any::<bool>().prop_map(MsgpackValue::Boolean),
        any::<i64>().prop_map(MsgpackValue::from),
        any::<u64>().prop_map(MsgpackValue::from),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(MsgpackValue::F64),
        ".{0,20}".prop_map(MsgpackValue::from),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(MsgpackValue::Binary),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(t, d)| MsgpackValue::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(MsgpackValue::Array),
            prop::collection::vec((inner.clone(), inner), 0..8).prop_map(MsgpackValue::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Capabilities::decode(&bytes);
    }

    #[test]
    fn hostile_length_prefixes_are_refused_cheaply(marker in prop::sample::select(vec![0xdc_u8, 0xdd, 0xde, 0xdf, 0xc5, 0xc6, 0xdb]), tail in prop::collection::vec(any::<u8>(), 0..8)) {
        // Containers and strings claiming up to 4 billion elements, with almost nothing after.
        let mut bytes = vec![marker, 0xff, 0xff, 0xff, 0xff];
        bytes.extend(tail);
        prop_assert!(Capabilities::decode(&bytes).is_err());
    }

    #[test]
    fn what_we_encode_decodes_to_itself(v in value()) {
        let caps = Capabilities::new(v.clone());
        let bytes = caps.encode().unwrap();
        prop_assert_eq!(Capabilities::decode(&bytes).unwrap().into_value(), v);
        // The JSON view of any value is produced without panicking.
        let _ = caps.to_json().to_string();
    }
}
