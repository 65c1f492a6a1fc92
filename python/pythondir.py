"""Print where Python packages go for install prefix argv[1]: the
dist-packages directory under it that this (Debian) python3 reads, else
the standard PREFIX/lib/python3.X/site-packages.  Run by configure."""
import sys
import sysconfig

prefix = sys.argv[1].rstrip("/") or "/"
for p in sys.path:
    if p.startswith(prefix + "/lib/") and p.endswith("/dist-packages"):
        print(p)
        break
else:
    print(sysconfig.get_path("purelib", "posix_prefix",
                             {"base": prefix, "platbase": prefix}))
