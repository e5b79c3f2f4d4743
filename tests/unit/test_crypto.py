import base64
import pickle

import pytest

from shared.crypto import (
    DecryptionError,
    Keyring,
    MasterKey,
    credential_aad,
    generate_master_key,
)

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(1, 33))).decode()
SECRET = b'{"password":"hunter2"}'


@pytest.fixture
def ring() -> Keyring:
    return Keyring(MasterKey(KEY_A))


def flip_bit(token: str, index: int) -> str:
    version, key_id, body = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index] ^= 0x01
    return ".".join([version, key_id, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])


def test_round_trip_and_token_shape(ring: Keyring) -> None:
    token = ring.encrypt(7, SECRET, aad=credential_aad(42))
    version, key_id, _ = token.split(".")
    assert version == "wf1"
    assert key_id == MasterKey(KEY_A).key_id
    assert len(key_id) == 16
    assert b"hunter2" not in token.encode()
    assert ring.decrypt(7, token, aad="credential:42") == SECRET


def test_same_plaintext_encrypts_differently_each_time(ring: Keyring) -> None:
    first = ring.encrypt(7, SECRET, aad="credential:1")
    second = ring.encrypt(7, SECRET, aad="credential:1")
    assert first != second
    assert ring.decrypt(7, first, aad="credential:1") == ring.decrypt(7, second, aad="credential:1")


def test_json_round_trip(ring: Keyring) -> None:
    token = ring.encrypt_json(3, {"password": "pässword", "port": 21}, aad="credential:9")
    assert ring.decrypt_json(3, token, aad="credential:9") == {"password": "pässword", "port": 21}


@pytest.mark.parametrize("index", [0, 11, 12, 20, -1])  # nonce, ciphertext and tag bytes
def test_flipped_bit_is_detected(ring: Keyring, index: int) -> None:
    token = ring.encrypt(7, SECRET, aad="credential:1")
    with pytest.raises(DecryptionError, match="authentication"):
        ring.decrypt(7, flip_bit(token, index), aad="credential:1")


def test_token_copied_to_another_department_fails(ring: Keyring) -> None:
    token = ring.encrypt(7, SECRET, aad="credential:1")
    with pytest.raises(DecryptionError):
        ring.decrypt(8, token, aad="credential:1")


def test_token_copied_to_another_record_fails(ring: Keyring) -> None:
    token = ring.encrypt(7, SECRET, aad="credential:1")
    with pytest.raises(DecryptionError):
        ring.decrypt(7, token, aad="credential:2")


def test_unknown_key_id_is_named(ring: Keyring) -> None:
    other = Keyring(MasterKey(KEY_B))
    token = other.encrypt(7, SECRET, aad="credential:1")
    with pytest.raises(DecryptionError, match=MasterKey(KEY_B).key_id):
        ring.decrypt(7, token, aad="credential:1")


def test_same_key_id_with_forged_prefix_still_fails(ring: Keyring) -> None:
    token = Keyring(MasterKey(KEY_B)).encrypt(7, SECRET, aad="credential:1")
    forged = ".".join(["wf1", MasterKey(KEY_A).key_id, token.split(".")[2]])
    with pytest.raises(DecryptionError, match="authentication"):
        ring.decrypt(7, forged, aad="credential:1")


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "wf2.abcd.AAAA", "wf1..AAAA", "wf1.abcd.!!!!", "wf1.abcd.AAAA", "enc2:AAAA"],
)
def test_malformed_tokens_raise_decryption_error(ring: Keyring, token: str) -> None:
    with pytest.raises(DecryptionError):
        ring.decrypt(7, token, aad="credential:1")


def test_rotation_old_tokens_still_decrypt_and_reencrypt_to_current() -> None:
    old = Keyring(MasterKey(KEY_A))
    token = old.encrypt(7, SECRET, aad="credential:5")

    rotated = Keyring(MasterKey(KEY_B), previous=[MasterKey(KEY_A)])
    assert rotated.needs_rotation(token)
    assert rotated.decrypt(7, token, aad="credential:5") == SECRET

    fresh = rotated.reencrypt(7, token, aad="credential:5")
    assert fresh.split(".")[1] == MasterKey(KEY_B).key_id
    assert not rotated.needs_rotation(fresh)
    assert Keyring(MasterKey(KEY_B)).decrypt(7, fresh, aad="credential:5") == SECRET
    with pytest.raises(DecryptionError):
        old.decrypt(7, fresh, aad="credential:5")


def test_reencrypt_refuses_tampered_token() -> None:
    rotated = Keyring(MasterKey(KEY_B), previous=[MasterKey(KEY_A)])
    token = Keyring(MasterKey(KEY_A)).encrypt(7, SECRET, aad="credential:5")
    with pytest.raises(DecryptionError):
        rotated.reencrypt(7, token, aad="credential:6")


def test_keyring_from_settings_text() -> None:
    ring = Keyring.from_base64(KEY_B, f" {KEY_A} ,")
    assert ring.current.key_id == MasterKey(KEY_B).key_id
    assert ring.key_ids == {MasterKey(KEY_A).key_id, MasterKey(KEY_B).key_id}


def test_department_keys_differ() -> None:
    key = MasterKey(KEY_A)
    assert key.derive(1) != key.derive(2)
    assert key.derive(1) == MasterKey(KEY_A).derive(1)


def test_generated_master_key_is_usable() -> None:
    text = generate_master_key()
    assert len(base64.b64decode(text)) == 32
    assert MasterKey(text).key_id != MasterKey(generate_master_key()).key_id


def test_master_key_accepts_url_safe_and_unpadded_base64() -> None:
    raw = bytes([0xFB] * 32)
    standard = base64.b64encode(raw).decode()
    url_safe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert MasterKey(standard).key_id == MasterKey(url_safe).key_id == MasterKey(raw).key_id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "exactly 32 bytes, got 16"),
        (base64.b64encode(b"x" * 33).decode(), "exactly 32 bytes, got 33"),
    ],
)
def test_bad_master_key_is_a_clear_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MasterKey(text)


def test_master_key_never_prints_its_bytes() -> None:
    key = MasterKey(KEY_A)
    ring = Keyring(key)
    for text in (repr(key), str(key), repr(ring), f"{key}"):
        assert KEY_A not in text
        assert bytes(range(32)).hex() not in text
        assert key.key_id in text
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_department_id_must_be_an_int(ring: Keyring) -> None:
    with pytest.raises(TypeError):
        ring.encrypt("7", SECRET, aad="x")  # type: ignore[arg-type]
