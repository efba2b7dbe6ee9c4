#![allow(clippy::unwrap_used)]

use super::*;

const ED25519_KEY: &str = include_str!("../../tests/data/ed25519-test-key.pem");
const ED25519_PUB: &str = include_str!("../../tests/data/ed25519-test-key.pub.pem");
const P256_KEY: &str = include_str!("../../tests/data/p256-test-key.pem");
const P256_PUB: &str = include_str!("../../tests/data/p256-test-key.pub.pem");
const P256_SEC1_KEY: &str = include_str!("../../tests/data/p256-sec1-test-key.pem");

const PLUGIN: &str = r#"
apiVersion: mmf.marty.dev/v1alpha1
kind: MmfPlugin
metadata:
  name: payments
  namespace: shop
  labels: {team: pay}
spec:
  version: 1.2.0
  image: registry.example/payments@sha256:0123
  description: "Takes money, gives receipts: ünïcödé"
  services:
    - name: api
      routes:
        - path: /pay
          methods: [POST]
  config:
    retries: 3
    ratio: 0.1
"#;

fn plugin(text: &str) -> MmfPlugin {
    serde_saphyr::from_str(text).unwrap()
}

fn trusted(id: &str, pem: &str) -> TrustedKey {
    TrustedKey::parse(id, pem).unwrap()
}

fn signed(key_pem: &str, key_id: &str) -> MmfPlugin {
    let mut plugin = plugin(PLUGIN);
    let key = SigningKey::from_pem(key_pem).unwrap();
    plugin.spec.signature = Some(sign(&plugin, &key, key_id).unwrap());
    plugin
}

#[test]
fn payload_is_canonical_json_of_the_typed_spec() {
    let payload = String::from_utf8(payload(&plugin(PLUGIN)).unwrap()).unwrap();
    assert_eq!(
        payload,
        r#"{"apiVersion":"mmf.marty.dev/v1alpha1","kind":"MmfPlugin","name":"payments","spec":{"config":{"ratio":0.1,"retries":3},"description":"Takes money, gives receipts: ünïcödé","image":"registry.example/payments@sha256:0123","services":[{"databaseRequired":false,"healthCheckPath":"/health","metricsEnabled":true,"name":"api","routes":[{"authRequired":false,"methods":["POST"],"path":"/pay"}]}],"version":"1.2.0"}}"#
    );
}

#[test]
fn payload_ignores_defaults_written_out_empty_fields_and_the_signature() {
    let defaulted = PLUGIN.replace(
        "    - name: api\n",
        "    - name: api\n      healthCheckPath: /health\n      metricsEnabled: true\n      databaseRequired: false\n      dependencies: []\n",
    ) + "  tags: []\n  environments: {}\n  signature: {keyId: k, algorithm: ed25519, value: AAAA}\n";
    assert_ne!(defaulted, PLUGIN);
    assert_eq!(
        payload(&plugin(&defaulted)).unwrap(),
        payload(&plugin(PLUGIN)).unwrap()
    );
}

#[test]
fn payload_needs_a_name() {
    let mut plugin = plugin(PLUGIN);
    plugin.metadata.name = None;
    assert_eq!(
        payload(&plugin).unwrap_err().to_string(),
        "cannot build the signed payload: metadata.name is missing"
    );
}

#[test]
fn digest_is_sha256_hex() {
    assert_eq!(
        digest(b"abc"),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn round_trip_both_algorithms() {
    for (key, public, algorithm) in [
        (ED25519_KEY, ED25519_PUB, SignatureAlgorithm::Ed25519),
        (P256_KEY, P256_PUB, SignatureAlgorithm::EcdsaP256Sha256),
    ] {
        let plugin = signed(key, "release");
        let verified = verify(
            &plugin,
            &[trusted("other", ED25519_PUB), trusted("release", public)],
        )
        .unwrap();
        assert_eq!(
            verified,
            Verified {
                key_id: "release".to_owned(),
                algorithm,
                digest: digest(&payload(&plugin).unwrap()),
            }
        );
        assert_eq!(plugin.spec.signature.unwrap().algorithm, algorithm);
    }
}

#[test]
fn ed25519_signature_is_golden() {
    // Ed25519 is deterministic; cross-checked with
    // `mmf payload | openssl pkeyutl -sign -rawin -inkey tests/data/ed25519-test-key.pem | base64`.
    let plugin = signed(ED25519_KEY, "release");
    assert_eq!(
        plugin.spec.signature.unwrap().value,
        "HYKJAQiu602Nfw5RL5bF2Do6TWgnDumDN2fT2uJWbjcNZQqtixOFOMOa2q+yaOeb2hgXczh14nkCv4fWNUkpDw=="
    );
}

#[test]
fn sec1_key_with_ec_parameters_loads() {
    let key = SigningKey::from_pem(P256_SEC1_KEY).unwrap();
    assert_eq!(key.algorithm(), SignatureAlgorithm::EcdsaP256Sha256);
    let plugin = signed(P256_SEC1_KEY, "ec");
    verify(&plugin, &[trusted("ec", &key.public_key_pem().unwrap())]).unwrap();
}

#[test]
fn public_key_pem_matches_openssl() {
    for (key, public) in [(ED25519_KEY, ED25519_PUB), (P256_KEY, P256_PUB)] {
        assert_eq!(
            SigningKey::from_pem(key).unwrap().public_key_pem().unwrap(),
            public
        );
    }
}

#[test]
fn tampered_spec_fails() {
    let mut plugin = signed(ED25519_KEY, "k");
    plugin.spec.version = "1.2.1".to_owned();
    assert_eq!(
        verify(&plugin, &[trusted("k", ED25519_PUB)]),
        Err(SignatureError::Invalid {
            key_id: "k".to_owned()
        })
    );
    let mut plugin = signed(P256_KEY, "k");
    plugin.spec.config = None;
    assert_eq!(
        verify(&plugin, &[trusted("k", P256_PUB)])
            .unwrap_err()
            .to_string(),
        "spec.signature.value does not verify with key \"k\": the spec, the name or the key changed since signing"
    );
}

#[test]
fn signature_copied_to_another_name_fails() {
    let mut plugin = signed(ED25519_KEY, "k");
    plugin.metadata.name = Some("payments-copy".to_owned());
    assert_eq!(
        verify(&plugin, &[trusted("k", ED25519_PUB)]),
        Err(SignatureError::Invalid {
            key_id: "k".to_owned()
        })
    );
}

#[test]
fn other_key_of_the_same_algorithm_fails() {
    let other = generate(SignatureAlgorithm::Ed25519).unwrap();
    let plugin = signed(ED25519_KEY, "k");
    assert_eq!(
        verify(&plugin, &[trusted("k", &other.public_pem)]),
        Err(SignatureError::Invalid {
            key_id: "k".to_owned()
        })
    );
}

#[test]
fn algorithm_mismatch_is_reported() {
    let plugin = signed(ED25519_KEY, "k");
    let error = verify(&plugin, &[trusted("k", P256_PUB)]).unwrap_err();
    assert_eq!(
        error,
        SignatureError::AlgorithmMismatch {
            key_id: "k".to_owned(),
            key_algorithm: SignatureAlgorithm::EcdsaP256Sha256,
            signature_algorithm: SignatureAlgorithm::Ed25519,
        }
    );
    assert_eq!(
        error.to_string(),
        "spec.signature.algorithm is ed25519 but trusted key \"k\" is an ecdsa-p256-sha256 key: re-sign with that key or fix the algorithm"
    );
}

#[test]
fn malformed_values_are_reported() {
    let cases = [
        (ED25519_PUB, "not base64!"),
        (ED25519_PUB, "AAAA"),
        (P256_PUB, "AAAA"),
    ];
    for (public, value) in cases {
        let mut plugin = signed(
            if public == P256_PUB {
                P256_KEY
            } else {
                ED25519_KEY
            },
            "k",
        );
        if let Some(signature) = plugin.spec.signature.as_mut() {
            signature.value = value.to_owned();
        }
        let error = verify(&plugin, &[trusted("k", public)]).unwrap_err();
        assert!(
            matches!(error, SignatureError::MalformedValue { .. }),
            "{value}: {error}"
        );
    }
    let mut plugin = signed(ED25519_KEY, "k");
    if let Some(signature) = plugin.spec.signature.as_mut() {
        signature.value = "AAAA".to_owned();
    }
    assert_eq!(
        verify(&plugin, &[trusted("k", ED25519_PUB)])
            .unwrap_err()
            .to_string(),
        "spec.signature.value is malformed: an ed25519 signature is 64 bytes, this one is 3"
    );
}

#[test]
fn missing_and_untrusted_are_reported() {
    assert_eq!(
        verify(&plugin(PLUGIN), &[]).unwrap_err().to_string(),
        "spec.signature is missing: sign the plugin with `mmf sign --key KEY.pem --key-id ID -f FILE`"
    );
    let plugin = signed(ED25519_KEY, "x");
    assert_eq!(
        verify(
            &plugin,
            &[trusted("a", ED25519_PUB), trusted("b", P256_PUB)]
        )
        .unwrap_err()
        .to_string(),
        "spec.signature.keyId \"x\" is not one of the environment's trusted keys (a, b)"
    );
    assert_eq!(
        verify(&plugin, &[]).unwrap_err(),
        SignatureError::UntrustedKey {
            key_id: "x".to_owned(),
            trusted: vec![],
        }
    );
}

#[test]
fn bad_keys_are_reported() {
    assert!(matches!(
        PublicKey::from_pem(ED25519_KEY),
        Err(SignatureError::BadKey { .. })
    ));
    assert!(matches!(
        PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        Err(SignatureError::BadKey { .. })
    ));
    assert!(matches!(
        SigningKey::from_pem(ED25519_PUB),
        Err(SignatureError::BadKey { .. })
    ));
}

#[test]
fn a_trusted_key_is_parsed_once_and_keeps_its_id_and_pem() {
    let key = trusted("release", ED25519_PUB);
    assert_eq!(
        (key.id(), key.pem(), key.public_key().algorithm()),
        ("release", ED25519_PUB, SignatureAlgorithm::Ed25519)
    );
    assert_eq!(
        trusted("ec", P256_PUB).public_key().algorithm(),
        SignatureAlgorithm::EcdsaP256Sha256
    );
    assert_eq!(
        TrustedKey::parse("k", "garbage").unwrap_err().to_string(),
        "plugins.security.trusted_keys[k].public_key: not a PEM public key: expected a block starting with -----BEGIN PUBLIC KEY----- (export one with `openssl pkey -in KEY.pem -pubout`)"
    );
}

#[test]
fn a_trusted_key_reads_and_writes_the_policy_spelling() {
    let yaml = format!("id: release\npublic_key: {ED25519_PUB:?}\n");
    let key: TrustedKey = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(key, trusted("release", ED25519_PUB));
    assert_eq!(
        serde_json::to_value(&key).unwrap(),
        json!({"id": "release", "public_key": ED25519_PUB})
    );
    let error = serde_saphyr::from_str::<TrustedKey>("id: k\npublic_key: garbage\n").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("plugins.security.trusted_keys[k].public_key: not a PEM public key"),
        "{error}"
    );
}

#[test]
fn generated_keys_work_and_ed25519_is_pkcs8_v1() {
    for algorithm in [
        SignatureAlgorithm::Ed25519,
        SignatureAlgorithm::EcdsaP256Sha256,
    ] {
        let pair = generate(algorithm).unwrap();
        let key = SigningKey::from_pem(&pair.private_pem).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        assert_eq!(
            PublicKey::from_pem(&pair.public_pem).unwrap().algorithm(),
            algorithm
        );
        assert!(!format!("{pair:?}").contains(&pair.private_pem));
        let mut plugin = plugin(PLUGIN);
        plugin.spec.signature = Some(sign(&plugin, &key, "new").unwrap());
        verify(&plugin, &[trusted("new", &pair.public_pem)]).unwrap();
    }
    // A v1 Ed25519 PKCS#8 document is 48 bytes: SEQUENCE of 46, "MC4C" in base64.
    let pair = generate(SignatureAlgorithm::Ed25519).unwrap();
    assert!(
        pair.private_pem
            .starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAw")
    );
}
