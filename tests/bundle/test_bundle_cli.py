"""``hilnet bundle make`` and ``hilnet bundle show``, in-process and as a real subprocess."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from click.testing import CliRunner

from hilnet.bundle.codec import decode_bundle
from hilnet.bundle.crc import CrcType
from hilnet.commands.bundle import command


def run(*args, input=None):
    return CliRunner().invoke(command, list(args), input=input, catch_exceptions=False)


def test_make_then_show_json(tmp_path):
    payload = tmp_path / "photo.jpg"
    payload.write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "b.bundle"
    r = run(
        "make",
        "--source",
        "ipn:1.0",
        "--dest",
        "dtn://ground/photos",
        "--payload",
        str(payload),
        "--lifetime",
        "2h",
        "--crc",
        "16",
        "--hop-limit",
        "8",
        "--seq",
        "4",
        "--out",
        str(out),
    )
    assert r.exit_code == 0, r.output
    bundle = decode_bundle(out.read_bytes())
    assert bundle.payload == payload.read_bytes() and bundle.primary.lifetime_ms == 7_200_000
    assert bundle.primary.crc_type == CrcType.CRC16 and bundle.primary.sequence == 4
    r = run("show", "--json", str(out))
    d = json.loads(r.output)
    assert d["version"] == 7 and d["source"] == "ipn:1.0" and d["destination"] == "dtn://ground/photos"
    assert d["report_to"] == "dtn:none" and d["lifetime_ms"] == 7_200_000 and d["crc_type"] == "CRC16"
    assert d["sequence"] == 4 and d["creation_ms"] > 0 and d["creation_time"].endswith("Z")
    assert d["payload_length"] == len(payload.read_bytes())
    assert d["payload_sha256"] == hashlib.sha256(payload.read_bytes()).hexdigest()
    assert [(b["type_name"], b["number"]) for b in d["blocks"]] == [("HOP_COUNT", 2), ("PAYLOAD", 1)]
    assert d["blocks"][0]["hop_limit"] == 8 and all(len(b["crc"]) == 4 for b in d["blocks"])
    text = run("show", str(out)).output
    assert "block 1: PAYLOAD" in text and "hop_limit 8" in text and "lifetime    2h" in text


def test_make_generated_payload_to_stdout_and_show_from_stdin():
    r = CliRunner().invoke(
        command, ["make", "--source", "ipn:1.0", "--dest", "ipn:2.1", "--size", "1KiB", "--crc", "none"]
    )
    assert r.exit_code == 0
    bundle = decode_bundle(r.stdout_bytes)
    assert len(bundle.payload) == 1024 and bundle.payload[:3] == b"\x00\x01\x02"
    shown = run("show", "--json", "-", input=r.stdout_bytes)
    assert json.loads(shown.output)["blocks"][-1]["crc"] is None


def test_make_needs_exactly_one_payload_source(tmp_path):
    r = CliRunner().invoke(command, ["make", "--source", "ipn:1.0", "--dest", "ipn:2.1"])
    assert r.exit_code == 2 and "exactly one" in r.output


def _hilnet(*args, input=None):
    return subprocess.run([sys.executable, "-m", "hilnet", *args], input=input, capture_output=True, timeout=60)


def test_subprocess_malformed_input_exits_2_with_offset(tmp_path):
    made = _hilnet("bundle", "make", "--source", "ipn:1.0", "--dest", "ipn:2.1", "--size", "100")
    assert made.returncode == 0, made.stderr
    wire = made.stdout
    bad = _hilnet("bundle", "show", "-", input=wire[:50])
    assert bad.returncode == 2 and b"at byte" in bad.stderr and b"truncated" in bad.stderr
    corrupt = bytearray(wire)
    corrupt[-10] ^= 0xFF
    bad = _hilnet("bundle", "show", "-", input=bytes(corrupt))
    assert bad.returncode == 2 and b"CRC" in bad.stderr
    good = _hilnet("bundle", "show", "-", input=wire)
    assert good.returncode == 0 and b"ipn:1.0 -> ipn:2.1" in good.stdout
    bad_eid = _hilnet("bundle", "make", "--source", "ipn:x", "--dest", "ipn:2.1", "--size", "1")
    assert bad_eid.returncode == 2 and b"ipn:x" in bad_eid.stderr


def test_show_decodes_unknown_extension_blocks_as_plain_cbor(tmp_path):
    import cbor2

    from hilnet.bundle.codec import encode_bundle
    from hilnet.bundle.make import make_bundle

    b = make_bundle("ipn:1.0", "ipn:2.1", b"hi", 60_000, creation_ms=1_000)
    b = b.with_extension(200, cbor2.dumps({"k": [1, b"\x01\x02"]}))  # 193 is the known class-of-service block
    b = b.with_extension(201, b"\x01\x02")  # two items: not one CBOR item
    path = tmp_path / "u.bundle"
    path.write_bytes(encode_bundle(b))
    r = run("show", "--json", str(path))
    assert r.exit_code == 0
    contents = {blk["type"]: blk.get("content") for blk in json.loads(r.output)["blocks"]}
    assert contents[200] == {"cbor": {"k": [1, {"bytes": "0102"}]}}
    assert contents[201] == {"not_cbor": "0102"}
    assert contents[1] is None  # the payload is summarised by its hash, not decoded


def test_make_signed_and_encrypted_then_show_with_and_without_keys(tmp_path):
    keys = tmp_path / "k.keys"
    keys.write_text(f"ipn:1.0 integrity {'11' * 32}\nipn:1.0 confidentiality {'22' * 32}\n")
    keys.chmod(0o600)
    out = tmp_path / "s.bundle"
    r = run("make", "--source", "ipn:1.1", "--dest", "ipn:4.1", "--size", "100")
    plain_sha = json.loads(run("show", "-", "--json", input=r.stdout_bytes).output)["payload_sha256"]
    args = ("--source", "ipn:1.1", "--dest", "ipn:4.1", "--size", "100", "--out", str(out))
    assert run("make", *args, "--sign", str(keys), "--encrypt", str(keys)).exit_code == 0
    d = json.loads(run("show", str(out), "--json").output)
    bcb, bib, payload = d["blocks"]
    assert (bcb["type_name"], bib["type_name"]) == ("BLOCK_CONFIDENTIALITY", "BLOCK_INTEGRITY")
    sec = bcb["security"]
    assert sec["context"] == "BCB-AES-GCM" and sec["source"] == "ipn:1.0" and sec["targets"] == [bib["number"], 1]
    assert sec["parameters"]["aes_variant"] == 3 and len(sec["parameters"]["iv"]) == 24
    assert bib == bib | {"encrypted_by": bcb["number"]} and payload["sha256"] != plain_sha
    opened = json.loads(run("show", str(out), "--json", "--keys", str(keys)).output)
    assert [b["type_name"] for b in opened["blocks"]] == ["PAYLOAD"] and opened["payload_sha256"] == plain_sha
    wrong = tmp_path / "w.keys"
    wrong.write_text(f"ipn:1.0 integrity {'11' * 32}\nipn:1.0 confidentiality {'33' * 32}\n")
    p = subprocess.run(
        [sys.executable, "-m", "hilnet", "bundle", "show", str(out), "--keys", str(wrong)],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "does not unwrap with the key for ipn:1.0" in p.stderr


def test_show_describes_a_signed_bundle(tmp_path):
    keys = tmp_path / "k.keys"
    keys.write_text(f"ipn:1.0 integrity {'11' * 32}\n")
    r = run("make", "--source", "ipn:1.1", "--dest", "ipn:4.1", "--size", "10", "--sign", str(keys))
    (bib, _payload) = json.loads(run("show", "-", "--json", input=r.stdout_bytes).output)["blocks"]
    assert bib["security"]["context"] == "BIB-HMAC-SHA2" and bib["security"]["parameters"] == {
        "sha_variant": 6,
        "scope_flags": 7,
    }
    assert len(bib["security"]["results"][0]["hmac"]) == 96  # 48 bytes of HMAC-SHA384
    text = run("show", "-", input=r.stdout_bytes).output
    assert "BIB-HMAC-SHA2" in text
