#!/usr/bin/env python3
"""A ferry remote protocol v1 client, written from docs/protocol.md alone.

It exists to prove that the document is enough: it uses the Python
standard library and PyNaCl (Debian's python3-nacl) and nothing of ferry's
code, and every constant in it is one the document states (the prefixes,
the header's spelling, the canonical form, the limits the test probes).
tests/t/t4002-interop-protocol.sh drives it against a real ferry-server.

Commands (SEED is a device key's 32-byte seed in hex):

  key --seed SEED
      print the device's public key (base64url), as `ferry-server allow`
      takes it.
  item --seed SEED OP COLLECTION ID BASE SEQ [BODY-JSON|@FILE]
      print one push item {"record":..,"sig":..}: a record in canonical
      form made and signed as the document says (ts = now, milliseconds).
  sign-record --seed SEED TEXT
      print a push item for exactly these record bytes (for records a
      careful client would never write: a wrong type, a missing member).
  request --url URL --seed SEED [--ts-offset S] [--bad-sig] [--no-sign]
          [--elapsed] METHOD TARGET [BODY-FILE]
      send one signed request; print the status code on the first line,
      then the body as received.  --ts-offset signs with a clock S seconds
      off; --bad-sig signs another body; --elapsed prints "elapsed_ms N"
      on stderr.
  push --url URL --seed SEED [request's options] ITEM|@FILE...
      POST /v1/push with these items, printed like request.
  pull --url URL --seed SEED --limit L
      walk /v1/changes from 0, L entries a page, until a page is empty,
      checking every entry's signature (rebuilding its record from the
      entry unless it carries one); print "pages N", "verified N (K with
      their record)", then the change ids in order, one a line.
  verify-history FILE
      check a history reply offline as the document says: every record's
      signature over its exact bytes with the key it names, and the
      entry's device, seq, op and ts are the record's.  Print
      "verified N".
  examples FILE
      print the worked examples (<!-- example: NAME --> blocks) of a
      Markdown file, one "NAME: CONTENT" a line (newlines as \\n), sorted.
  check-examples FILE
      recompute every worked example of docs/protocol.md from its seed
      and compare: the canonical form, key, records' signatures, body
      hash, signed messages, Authorization headers.  Print "examples ok N".

Exit status: 0 when the exchange happened (whatever the HTTP status) or
the check passed; 1 when a check failed; 2 on usage errors; 3 when the
server could not be reached.
"""

import argparse
import base64
import hashlib
import http.client
import json
import re
import sys
import time
import urllib.parse

try:
    import nacl.exceptions
    import nacl.signing
except ImportError:
    sys.stderr.write("client.py: PyNaCl is missing: install the Debian "
                     "packages python3 and python3-nacl\n")
    sys.exit(1)

# From docs/protocol.md, "Signing requests" and "The record signature".
REQUEST_PREFIX = b"ferry-request-v1\n"
RECORD_PREFIX = b"ferry-change-v1\n"
SCHEME = "Ferry-Ed25519"


def b64(raw):
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64(text, size):
    """Decode unpadded base64url of exactly size bytes, canonical only."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url: %r" % text)
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != size or b64(raw) != text:
        raise ValueError("not the canonical base64url of %d bytes" % size)
    return raw


def canonical(obj):
    """The canonical form: sorted keys, no whitespace, UTF-8 as itself,
    and \\u escapes (controls only) with upper-case hex digits."""
    text = json.dumps(obj, separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False)
    # An escape is a backslash preceded by an even number of backslashes.
    return re.sub(r"(?<!\\)((?:\\\\)*)\\u([0-9a-f]{4})",
                  lambda m: m.group(1) + "\\u" + m.group(2).upper(), text)


class Device:
    """A device key made from a 32-byte seed."""

    def __init__(self, seed_hex):
        self.sk = nacl.signing.SigningKey(bytes.fromhex(seed_hex))
        self.key = b64(bytes(self.sk.verify_key))

    def sign(self, prefix, message):
        return b64(self.sk.sign(prefix + message).signature)

    def record(self, op, collection, doc_id, base, seq, body=None, ts=None):
        """A record's text (canonical form) and its signature."""
        rec = {"v": 1, "op": op, "collection": collection, "id": doc_id,
               "base": base, "device": self.key, "seq": seq,
               "ts": int(time.time() * 1000) if ts is None else ts}
        if op == "put":
            rec["body"] = body
        text = canonical(rec)
        return text, self.sign(RECORD_PREFIX, text.encode("utf-8"))

    def request_message(self, method, target, ts, body):
        return (REQUEST_PREFIX + method.encode("ascii") + b"\n" +
                target.encode("ascii") + b"\n" + str(ts).encode("ascii") +
                b"\n" + hashlib.sha256(body).hexdigest().encode("ascii"))

    def authorization(self, method, target, ts, body):
        sig = self.sign(b"", self.request_message(method, target, ts, body))
        return '%s key="%s", ts="%d", sig="%s"' % (SCHEME, self.key, ts, sig)


def item(text, sig):
    return canonical({"record": text, "sig": sig})


def send(url, device, method, target, body=b"", ts_offset=0, bad_sig=False,
         sign=True, timeout=120):
    """One request; (status, body bytes).  Raises OSError if unreachable."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    headers = {}
    if sign:
        ts = int(time.time()) + ts_offset
        signed = body + b"x" if bad_sig else body
        headers["Authorization"] = device.authorization(method, target, ts,
                                                        signed)
    if body:
        headers["Content-Type"] = "application/json"
    try:
        # http.client sends the target as given: the bytes that were signed.
        conn.request(method, target, body=body if body else None,
                     headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def arg_text(arg):
    """An argument, or with "@FILE" the text of FILE (a big body)."""
    if arg.startswith("@"):
        return open(arg[1:], encoding="utf-8").read()
    return arg


def print_reply(status, body):
    sys.stdout.write("%d\n" % status)
    sys.stdout.flush()
    sys.stdout.buffer.write(body)


def examples(path):
    """The named example blocks of a Markdown file: {name: content}."""
    text = open(path, encoding="utf-8").read()
    found = {}
    for m in re.finditer(r"<!-- example: ([a-z0-9-]+) -->\n```\n(.*?)\n```\n",
                         text, re.S):
        if m.group(1) in found:
            raise ValueError("example %s appears twice" % m.group(1))
        found[m.group(1)] = m.group(2)
    return found


def check_examples(path):
    """Recompute the document's examples from its seed; list mismatches."""
    ex = examples(path)
    bad = []

    def expect(name, value):
        if name not in ex:
            bad.append("%s: missing" % name)
        elif ex[name] != value:
            bad.append("%s: the document has\n  %s\nbut it is\n  %s" %
                       (name, ex[name], value))

    expect("canonical", canonical(json.loads(ex["canonical"])))
    dev = Device(ex["seed"])
    expect("device", dev.key)
    for name in ("record-put", "record-delete"):
        text = ex[name]
        rec = json.loads(text)
        # The text is the canonical form of its own content ...
        expect(name, canonical(rec))
        if rec.get("device") != dev.key:
            bad.append("%s: device is not the seed's key" % name)
        # ... its signed bytes are the prefix and the text ...
        expect(name + "-signed-bytes", RECORD_PREFIX.decode() + text)
        # ... and its signature is the seed's (Ed25519 is deterministic)
        # and verifies.
        expect(name + "-sig", dev.sign(RECORD_PREFIX, text.encode()))
        try:
            dev.sk.verify_key.verify(RECORD_PREFIX + text.encode(),
                                     unb64(ex[name + "-sig"], 64))
        except (ValueError, nacl.exceptions.BadSignatureError) as e:
            bad.append("%s-sig: does not verify: %s" % (name, e))
    push = json.loads(ex["push-body"])
    put = push["changes"][0]
    if put != {"record": ex["record-put"], "sig": ex["record-put-sig"]}:
        bad.append("push-body: does not carry record-put and its sig")
    expect("push-body", canonical(push))
    requests = [("push", "POST", "/v1/push", ex["push-body"].encode()),
                ("changes", "GET", "/v1/changes?since=0&limit=2", b"")]
    for name, method, target, body in requests:
        m = re.search(r'ts="([0-9]+)"', ex.get(name + "-authorization", ""))
        if m is None:
            bad.append("%s-authorization: no ts" % name)
            continue
        ts = int(m.group(1))
        expect(name + "-body-sha256", hashlib.sha256(body).hexdigest())
        expect(name + "-message",
               dev.request_message(method, target, ts, body).decode())
        expect(name + "-authorization",
               dev.authorization(method, target, ts, body))
    if ex.get("changes-body-sha256") != hashlib.sha256(b"").hexdigest():
        bad.append("the empty body's hash is wrong")
    return len(ex), bad


def verify_entry(e):
    """Check one /v1/changes entry as the document says: the record is the
    entry's "record" if it has one, else rebuilt from the entry (base =
    version - 1, the device and seq of its change id); its signature is
    checked with the key the change id names, then the record must be the
    entry's change."""
    device, seq = e["change"].rsplit(":", 1)
    key = nacl.signing.VerifyKey(unb64(device, 32))
    if "record" in e:
        text = e["record"]
    else:
        rec = {"v": 1, "op": "delete" if e["deleted"] else "put",
               "collection": e["collection"], "id": e["id"],
               "base": e["version"] - 1, "device": device, "seq": int(seq),
               "ts": e["ts"]}
        if not e["deleted"]:
            rec["body"] = e["body"]
        text = canonical(rec)
    key.verify(RECORD_PREFIX + text.encode("utf-8"), unb64(e["sig"], 64))
    rec = json.loads(text)
    if (rec["device"] != device or rec["seq"] != int(seq) or
            rec["collection"] != e["collection"] or rec["id"] != e["id"] or
            rec["op"] != ("delete" if e["deleted"] else "put") or
            rec["base"] + 1 != e["version"] or rec["ts"] != e["ts"] or
            rec.get("body") != e.get("body")):
        raise ValueError("entry %d is not its record" % e["seq"])


def verify_history(path):
    reply = json.load(open(path, encoding="utf-8"))
    n = 0
    last = 0
    for e in reply["entries"]:
        key = nacl.signing.VerifyKey(unb64(e["device"], 32))
        key.verify(RECORD_PREFIX + e["record"].encode("utf-8"),
                   unb64(e["sig"], 64))
        rec = json.loads(e["record"])
        change = "%s:%d" % (rec["device"], rec["seq"])
        if (rec["device"] != e["device"] or rec["op"] != e["op"] or
                rec["ts"] != e["ts"] or change != e["change"]):
            raise ValueError("entry %d is not its record" % e["version"])
        if e["version"] <= last:
            raise ValueError("versions do not increase at %d" % e["version"])
        last = e["version"]
        n += 1
    return n


def main(argv):
    ap = argparse.ArgumentParser(prog="client.py")
    ap.add_argument("--url")
    ap.add_argument("--seed")
    ap.add_argument("--ts-offset", type=int, default=0)
    ap.add_argument("--bad-sig", action="store_true")
    ap.add_argument("--no-sign", action="store_true")
    ap.add_argument("--elapsed", action="store_true")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("command")
    ap.add_argument("args", nargs="*")
    o = ap.parse_args(argv)
    a = o.args
    dev = Device(o.seed) if o.seed else None
    try:
        if o.command == "key" and dev:
            print(dev.key)
        elif o.command == "item" and dev and len(a) in (5, 6):
            body = json.loads(arg_text(a[5])) if len(a) == 6 else None
            print(item(*dev.record(a[0], a[1], a[2], int(a[3]), int(a[4]),
                                   body)))
        elif o.command == "sign-record" and dev and len(a) == 1:
            print(item(a[0], dev.sign(RECORD_PREFIX, a[0].encode("utf-8"))))
        elif o.command == "request" and dev and o.url and len(a) in (2, 3):
            body = open(a[2], "rb").read() if len(a) == 3 else b""
            start = time.monotonic()
            status, reply = send(o.url, dev, a[0], a[1], body, o.ts_offset,
                                 o.bad_sig, not o.no_sign)
            if o.elapsed:
                sys.stderr.write("elapsed_ms %d\n" %
                                 ((time.monotonic() - start) * 1000))
            print_reply(status, reply)
        elif o.command == "push" and dev and o.url:
            body = ('{"changes":[%s]}' %
                    ",".join(arg_text(i) for i in a)).encode("utf-8")
            print_reply(*send(o.url, dev, "POST", "/v1/push", body,
                              o.ts_offset, o.bad_sig, not o.no_sign))
        elif o.command == "pull" and dev and o.url:
            since, pages, ids, kept = 0, 0, [], 0
            while pages < 1000:
                status, reply = send(o.url, dev, "GET",
                                     "/v1/changes?since=%d&limit=%d" %
                                     (since, o.limit))
                if status != 200:
                    print_reply(status, reply)
                    return 1
                page = json.loads(reply)
                if not page["changes"]:
                    break
                pages += 1
                for c in page["changes"]:
                    verify_entry(c)
                    ids.append(c["change"])
                    kept += "record" in c
                since = page["last_seq"]
            print("pages %d" % pages)
            print("verified %d (%d with their record)" % (len(ids), kept))
            for i in ids:
                print(i)
        elif o.command == "verify-history" and len(a) == 1:
            print("verified %d" % verify_history(a[0]))
        elif o.command == "examples" and len(a) == 1:
            for name, content in sorted(examples(a[0]).items()):
                print("%s: %s" % (name, content.replace("\n", "\\n")))
        elif o.command == "check-examples" and len(a) == 1:
            n, bad = check_examples(a[0])
            if bad:
                print("\n".join(bad))
                return 1
            print("examples ok %d" % n)
        else:
            ap.print_usage(sys.stderr)
            return 2
    except FileNotFoundError as e:
        sys.stderr.write("client.py: %s\n" % e)
        return 1
    except OSError as e:
        print("CONNECT-ERROR %s" % e)
        return 3
    except (ValueError, KeyError, nacl.exceptions.BadSignatureError) as e:
        print("FAILED: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
