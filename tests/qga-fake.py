# A fake QEMU guest agent on a Unix socket, for the qemu-ga writer's bad-input tests (driven by test-writer-qemu-ga-bad.sh): it logs every command it gets to LOG and answers as MODE says.
"""
Usage: qga-fake.py SOCKET LOG MODE

MODE:
  silent     accepts connections, reads, never answers
  garbage    answers every command with a 0xFF and a line that is no JSON
  error      syncs, then answers guest-fsfreeze-freeze* with an error
  notfrozen  syncs, freezes, but guest-fsfreeze-status says "thawed"
  ok         a well-behaved agent (frozen until thawed)
  prefrozen  frozen by someone else before any client came: freeze is
             refused ("disabled", as qemu-ga in frozen state), status
             says "frozen"
  lostfreeze syncs, freezes, but never answers the freeze (answers the
             rest)
"""
import json, os, socket, sys

path, log, mode = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(4)
frozen = mode == "prefrozen"


def note(s):
    with open(log, "a") as f:
        f.write(s + "\n")


def answer(c, obj, delim=False):
    c.sendall((b"\xff" if delim else b"") + json.dumps(obj).encode() + b"\n")


while True:
    c, _ = srv.accept()
    buf = b""
    while True:
        d = c.recv(4096)
        if not d:
            break
        buf += d
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.replace(b"\xff", b"")
            try:
                cmd = json.loads(line)
            except ValueError:
                continue
            ex = cmd.get("execute")
            note(ex)
            if mode == "silent":
                continue
            if mode == "garbage":
                c.sendall(b"\xffthis is not json\n")
                continue
            if ex == "guest-sync-delimited":
                answer(c, {"return": cmd["arguments"]["id"]}, delim=True)
            elif ex.startswith("guest-fsfreeze-freeze"):
                if frozen and mode == "prefrozen":
                    answer(c, {"error": {"class": "GenericError",
                                         "desc": "Command %s has been disabled" % ex}})
                elif mode == "lostfreeze":
                    frozen = True
                elif mode == "error":
                    answer(c, {"error": {"class": "GenericError",
                                         "desc": "fsfreeze is disabled"}})
                else:
                    frozen = True
                    answer(c, {"return": 1})
            elif ex == "guest-fsfreeze-status":
                st = "frozen" if frozen and mode != "notfrozen" else "thawed"
                answer(c, {"return": st})
            elif ex == "guest-fsfreeze-thaw":
                frozen = False
                answer(c, {"return": 1})
            else:
                answer(c, {"error": {"class": "CommandNotFound",
                                     "desc": "unknown"}})
    c.close()
