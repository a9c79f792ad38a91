"""The Shaman client's URL parsing and its two codecs, on wire text from the protocol documents.

Numbers in the docstrings are the client items of the conformance checklists:
``shaman-protocol.md`` section 13 (v2) and ``shaman-v3-protocol.md`` section 13 (v3).
"""

from __future__ import annotations

import base64
import email.header
import json
import re

import pytest

from bat_core.targets import PackError
from bat_plugins.shaman.client.codec import Entry, Reply, WireError
from bat_plugins.shaman.client.urls import (
    parse_flamenco_url,
    parse_shaman_url,
    resolve_endpoint,
)
from bat_plugins.shaman.client.v2 import V2Codec, definition, original_filename
from bat_plugins.shaman.client.v3 import V3Codec
from bat_plugins.shaman.client.v3 import original_filename as encoded_word

SHA_A = "9f14" + "0" * 56 + "e210"
SHA_B = "59c6" + "1" * 56 + "fa58"
ENTRIES = [Entry(SHA_A, 795, "scenes/shot 010.blend"), Entry(SHA_B, 1134, "textures/brick.png"),
           Entry(SHA_B, 1134, "_outside_project/home/me/lib/brick.png")]
ASKED = {e.path: e for e in ENTRIES}


# --- target strings ---------------------------------------------------------------------


@pytest.mark.parametrize(("url", "endpoint", "checkout"), [
    # 25: the checklist's own examples
    ("shaman://h/#X", "https://h/", "X"),
    ("shaman+http://h:8080/p/#a%20b", "http://h:8080/p/", "a b"),
    ("shaman+https://h/#5e1f00aa", "https://h/", "5e1f00aa"),
    ("shaman+http://mgr:8080/#5e1f00aa", "http://mgr:8080/", "5e1f00aa"),
    # an empty path becomes /, query and user info are kept, the fragment never reaches the server
    ("shaman://h", "https://h/", ""),
    ("shaman+http://user:pw@h:1/base/?x=1#id", "http://user:pw@h:1/base/?x=1", "id"),
    # BAT would lose "url" when joining routes to https://h/base/url; ours ends in /
    ("shaman://h/base/url#c", "https://h/base/url/", "c"),
])
def test_shaman_urls_parse_as_bat_does(url: str, endpoint: str, checkout: str) -> None:
    assert parse_shaman_url(url) == (endpoint, checkout)


def test_other_schemes_are_not_shaman_urls() -> None:
    """25: ``http://...`` is not a Shaman URL."""
    with pytest.raises(ValueError, match="not a Shaman URL"):
        parse_shaman_url("http://h/#x")


@pytest.mark.parametrize(("url", "base", "path"), [
    ("flamenco://farm:8080/jobs/shot1", "https://farm:8080/", "jobs/shot1"),
    ("flamenco+http://127.0.0.1:8080/jobs/shot%201/", "http://127.0.0.1:8080/", "jobs/shot 1"),
    ("flamenco+https://farm/á hausinn", "https://farm/", "á hausinn"),
    ("flamenco+http://farm:8080/", "http://farm:8080/", ""),
])
def test_flamenco_urls(url: str, base: str, path: str) -> None:
    assert parse_flamenco_url(url) == (base, path)


@pytest.mark.parametrize(("target", "api", "message"), [
    ("shaman+http://h/#a-b", "v2", r"checkout ID 'a-b' may only hold letters, digits and _"),
    ("shaman+http:///#x", "v2", "no host name"),
    ("shaman+http://h:99999/#x", "v2", "bad port number"),
    ("flamenco+http://h/a/../b", "v3", r"checkout path 'a/../b' must not contain \. or \.\. segments"),
    ("flamenco+http://h/a:b", "v3", "must not contain ':'"),
    ("flamenco+http://h/x#frag", "v3", "no \\?query or #fragment"),
    ("s3://bucket", "v2", "not a Shaman URL"),
])
def test_unusable_targets_are_refused_before_any_request(target: str, api: str, message: str) -> None:
    with pytest.raises(PackError, match=message):
        resolve_endpoint(target, api)


def test_plain_http_urls_for_target_scheme() -> None:
    """``--target-scheme shaman http://...`` and ``--target-scheme flamenco https://...``."""
    assert resolve_endpoint("http://h:8080/#job", "v2").base == "http://h:8080/"
    end = resolve_endpoint("https://h/jobs/a", "v3")
    assert (end.api, end.base, end.checkout) == ("v3", "https://h/", "jobs/a")
    assert resolve_endpoint("shaman+http://u:secret@h:1/#x", "v2").shown == "http://h:1/"


# --- v2 ---------------------------------------------------------------------------------


def test_v2_definition_lines() -> None:
    """27: ``<64 lowercase hex> <decimal size> <relpath>``, UTF-8, LF-joined, no trailing LF."""
    body = definition([*ENTRIES, Entry(SHA_A, 0, "tex/šu.png")])
    assert body == (f"{SHA_A} 795 scenes/shot 010.blend\n{SHA_B} 1134 textures/brick.png\n"
                    f"{SHA_B} 1134 _outside_project/home/me/lib/brick.png\n{SHA_A} 0 tex/šu.png").encode()
    req = V2Codec().requirements(ENTRIES)
    assert (req.method, req.path, dict(req.headers)) == ("POST", "checkout/requirements",
                                                         {"Content-Type": "text/plain"})


def test_v2_requirements_answer() -> None:
    """29: file-unknown files first, then already-uploading ones (in the server's order)."""
    body = b"already-uploading scenes/shot 010.blend\nfile-unknown textures/brick.png\n"
    assert V2Codec().needed(body, ASKED) == ["textures/brick.png", "scenes/shot 010.blend"]
    assert V2Codec().needed(b"", ASKED) == []  # everything stored
    assert V2Codec().needed(b"file-unknown textures/brick.png\r\n\n", ASKED) == ["textures/brick.png"]


@pytest.mark.parametrize(("body", "message"), [
    (b"file-unknown etc/passwd\n", "a file that is not in the checkout: 'etc/passwd'"),
    (b"file-maybe textures/brick.png\n", "unexpected answer"),
    (b"ERROR disk on fire\n", "the server answered: disk on fire"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_v2_requirements_answers_that_stop_the_pack(body: bytes, message: str) -> None:
    """28: an unknown word, a path not in the definition, an ERROR line."""
    with pytest.raises(WireError, match=message):
        V2Codec().needed(body, ASKED)


def test_v2_upload_request() -> None:
    """29-30: files/<sha>/<size>, the original filename, the defer header only when deferring is allowed."""
    path, headers = V2Codec().upload(ENTRIES[0], can_defer=True)
    assert path == f"files/{SHA_A}/795"
    assert headers == {"X-Shaman-Original-Filename": "scenes/shot 010.blend", "X-Shaman-Can-Defer-Upload": "true"}
    _, headers = V2Codec().upload(ENTRIES[1], can_defer=False)
    assert "X-Shaman-Can-Defer-Upload" not in headers


def test_v2_original_filename_is_latin1_safe() -> None:
    """v2 notes 12.3: non-ASCII names are percent-encoded (http.client sends Latin-1)."""
    assert original_filename("textures/100% wood.png") == "textures/100% wood.png"
    encoded = original_filename("tex/šu 100%.png")
    assert encoded == "tex/%C5%A1u 100%25.png"
    encoded.encode("latin-1")
    assert original_filename("a\nb") == "a%0Ab"  # never a header line break


@pytest.mark.parametrize(("status", "headers", "body", "reply"), [
    (204, {}, b"", Reply.STORED),
    (200, {}, b"", Reply.STORED),
    (208, {"Location": "/files/x/1"}, b"File already stored", Reply.ALREADY_STORED),
    (208, {"location": "/files/x/1"}, b"", Reply.ALREADY_STORED),
    (208, {}, b"File being uploaded, please defer", Reply.DEFER),
    (417, {}, b"Declared and actual checksums differ\n", Reply.REFUSED),
    (401, {}, b"JWT token authorization required: no token\n", Reply.REFUSED),
    (500, {}, b"I/O error\n", Reply.RETRY),
    (503, {}, b"", Reply.RETRY),
    (408, {}, b"", Reply.RETRY),
    (507, {}, b"Insufficient storage\n", Reply.REFUSED),
])
def test_v2_upload_answers(status: int, headers: dict[str, str], body: bytes, reply: Reply) -> None:
    """30: 208 with Location is stored, without it "please defer"; 5xx retried; 4xx stop."""
    got, message = V2Codec().upload_reply(status, headers, body)
    assert got is reply
    if reply in (Reply.RETRY, Reply.REFUSED):
        assert message.startswith(str(status))
    if status == 417:
        assert message == "417 Declared and actual checksums differ"


def test_v2_checkout() -> None:
    """32: create/<id> with the definition; the stripped body is the location."""
    req = V2Codec().create(ENTRIES, "jemoeder")
    assert (req.path, req.body) == ("checkout/create/jemoeder", definition(ENTRIES))
    assert V2Codec().created(200, b"er/jemoeder", "jemoeder") == "er/jemoeder"
    assert V2Codec().created(200, b"er/jemoeder\n", "jemoeder") == "er/jemoeder"
    with pytest.raises(WireError, match=r"checkout 'jemoeder' already exists on the server"):
        V2Codec().created(409, b"checkout 'jemoeder' already exists\n", "jemoeder")
    with pytest.raises(WireError, match=r"lacks 2 file\(s\) it said it had \(a\.png, b c\.png\); run the pack "
                                        r"again"):
        V2Codec().created(400, b"file-unknown a.png\nfile-unknown b c.png\n\n", "jemoeder")
    with pytest.raises(WireError, match=r"checkout 'x': 400 invalid checkout ID 'x'"):
        V2Codec().created(400, b"invalid checkout ID 'x'\n", "x")


def test_v2_definition_errors_name_the_path() -> None:
    text = V2Codec().error_text(b"ERROR invalid line 2: paths must be clean and not have any .. in them.\n\n",
                                ENTRIES)
    assert text.endswith("in them. (textures/brick.png)")


# --- v3 ---------------------------------------------------------------------------------


def test_v3_requirements_request_and_answer() -> None:
    """24-25: JSON with sha, size, path; the answer lists unknown and uploading entries."""
    req = V3Codec().requirements(ENTRIES[:1])
    assert (req.path, req.headers["Content-Type"]) == ("api/v3/shaman/checkout/requirements", "application/json")
    assert json.loads(req.body) == {"files": [{"sha": SHA_A, "size": 795, "path": "scenes/shot 010.blend"}]}
    answer = json.dumps({"files": [
        {"sha": SHA_A, "size": 795, "path": "scenes/shot 010.blend", "status": "uploading"},
        {"sha": SHA_B, "size": 1134, "path": "textures/brick.png", "status": "unknown"}]}).encode()
    assert V3Codec().needed(answer, ASKED) == ["textures/brick.png", "scenes/shot 010.blend"]
    assert V3Codec().needed(b'{"files": []}', ASKED) == []


@pytest.mark.parametrize(("answer", "message"), [
    ({"files": [{"sha": SHA_A, "size": 795, "path": "../x", "status": "unknown"}]}, "not in the checkout"),
    ({"files": [{"sha": SHA_A, "size": 795, "path": "scenes/shot 010.blend", "status": "lost"}]},
     "unexpected status 'lost'"),
    ({"files": [{"sha": SHA_B, "size": 795, "path": "scenes/shot 010.blend", "status": "unknown"}]},
     "other content"),
    ({"files": None}, "not a JSON object with a files list"),
    ([], "not a JSON object"),
])
def test_v3_requirements_answers_that_stop_the_pack(answer: object, message: str) -> None:
    """25: a path not sent or an unknown status aborts."""
    with pytest.raises(WireError, match=message):
        V3Codec().needed(json.dumps(answer).encode(), ASKED)


def test_v3_upload_request() -> None:
    """26, 28: octet-stream body, the filename header, the defer header when deferring is allowed."""
    path, headers = V3Codec().upload(Entry(SHA_A, 11, "scenes/a.blend"), can_defer=True)
    assert path == f"api/v3/shaman/files/{SHA_A}/11"
    assert headers == {"Content-Type": "application/octet-stream", "X-Shaman-Original-Filename": "scenes/a.blend",
                       "X-Shaman-Can-Defer-Upload": "true"}
    _, headers = V3Codec().upload(Entry(SHA_A, 11, "tex/šu.png"), can_defer=False)
    assert headers["X-Shaman-Original-Filename"] == "=?utf-8?b?dGV4L8WhdS5wbmc=?="  # the doc's own example
    assert "X-Shaman-Can-Defer-Upload" not in headers


@pytest.mark.parametrize("name", ["tex/šu.png", "á hausinn á þér/" + "ü" * 300 + ".png", "a\r\nb", "=?x?="])
def test_v3_original_filename_is_one_rfc2047_word(name: str) -> None:
    """26: RFC 2047 for anything not plain ASCII, never folded however long; decodes back to the name."""
    value = encoded_word(name)
    assert re.fullmatch(r"=\?utf-8\?b\?[A-Za-z0-9+/=]+\?=", value), value
    assert "\n" not in value and " " not in value
    [(raw, charset)] = email.header.decode_header(value)
    assert charset == "utf-8" and raw.decode("utf-8") == name
    assert base64.b64decode(value[10:-2]).decode() == name


@pytest.mark.parametrize(("status", "body", "reply"), [
    (200, b"", Reply.STORED),  # Flamenco's Go server
    (204, b"", Reply.STORED),  # the OpenAPI document, and bat shaman serve
    (208, b"", Reply.ALREADY_STORED),
    (425, b"", Reply.DEFER),
    (417, b'{"code": 417, "message": "file SHA256 mismatched, declared X but received Y"}', Reply.REFUSED),
    (500, b'{"message": "Internal Server Error"}', Reply.RETRY),
    (503, b'{"code":503,"message":"shaman server not active"}', Reply.RETRY),
    (400, b'{"message": "request body has an error: value is required but missing"}', Reply.REFUSED),
])
def test_v3_upload_answers(status: int, body: bytes, reply: Reply) -> None:
    """27: 200, 204 and 208 are success; 425 defers; 417 fails that file."""
    got, message = V3Codec().upload_reply(status, {}, body)
    assert got is reply
    if status == 417:
        assert message == "417 file SHA256 mismatched, declared X but received Y"


def test_v3_checkout() -> None:
    """29-30: checkoutPath in the request; the returned path is used; 424, 409 and 500 fail."""
    req = V3Codec().create(ENTRIES[:1], "job 1")
    assert req.path == "api/v3/shaman/checkout/create"
    assert json.loads(req.body) == {"files": [{"sha": SHA_A, "size": 795, "path": "scenes/shot 010.blend"}],
                                    "checkoutPath": "job 1"}
    assert V3Codec().created(200, b'{"checkoutPath": "job 1-ab12"}', "job 1") == "job 1-ab12"
    with pytest.raises(WireError, match="lacks files it said it had"):
        V3Codec().created(424, b'{"code": 424, "message": "unknown files requested in checkout: a.png"}', "j")
    with pytest.raises(WireError, match="lacks files it said it had"):  # Flamenco's Go server
        V3Codec().created(500, b'{"code":500,"message":"unexpected error: unknown files requested in checkout"}',
                          "j")
    with pytest.raises(WireError, match="checkout path 'j' is taken"):
        V3Codec().created(409, b'{"code": 409, "message": "all taken"}', "j")
    with pytest.raises(WireError, match="checkout 'j': 500 unexpected error: symlinking"):
        V3Codec().created(500, b'{"code":500,"message":"unexpected error: symlinking \\"a\\" to checkout"}', "j")
    with pytest.raises(WireError, match="did not say which path"):
        V3Codec().created(200, b"{}", "j")
